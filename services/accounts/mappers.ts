import type { MessageInitShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  ApiKeyKind,
  type ApiKey as ApiKeyMsg,
  ApiKeySchema,
  type KeyLimits as KeyLimitsMsg,
  KeyLimitsSchema,
  type LimitUsageSchema,
  type ModelLimitUsage,
  ModelLimitUsageSchema,
  type Organization as OrganizationMsg,
  OrganizationSchema,
  Permission,
  type Role as RoleMsg,
  RoleSchema,
  type User as UserMsg,
  UserSchema,
} from "../../gen/passerelle/accounts/v1/resources_pb.js";
import type { KeyLimits } from "../platform/context.js";
import { keyLimitsOfKey } from "./account-store.js";
import type { LimitUsageView, ModelLimitView } from "./deps.js";
import type { ApiKey, Organization, Role, User } from "./entities.js";

/** Stored permission names ⇄ proto enum values. */
export const PERMISSION_NAMES: ReadonlyMap<Permission, string> = new Map([
  [Permission.ADMIN, "admin"],
  [Permission.CREATE_PUBLIC_COLLECTION, "create_public_collection"],
  [Permission.READ_METRICS, "read_metrics"],
]);
const PERMISSION_VALUES = new Map([...PERMISSION_NAMES].map(([v, n]) => [n, v]));

export function permissionFromName(name: string): Permission {
  return PERMISSION_VALUES.get(name) ?? Permission.UNSPECIFIED;
}

const ts = (d: Date | null | undefined) => (d ? timestampFromDate(d) : undefined);

/** A user entity, or the plain profile read by GET /v1/me. */
type UserLike = Pick<User, "id" | "email" | "name" | "expiresAt" | "createdAt" | "updatedAt"> & {
  role: { id: string };
  organization?: { id: string } | null;
} & ({ passwordHash?: string | null } | { hasPassword: boolean });

export function toUserMsg(u: UserLike): UserMsg {
  return create(UserSchema, {
    id: u.id,
    email: u.email,
    name: u.name,
    roleId: u.role.id,
    organizationId: u.organization?.id ?? "",
    expireTime: ts(u.expiresAt),
    hasPassword: "hasPassword" in u ? u.hasPassword : u.passwordHash != null,
    createTime: ts(u.createdAt),
    updateTime: ts(u.updatedAt),
  });
}

export function toRoleMsg(
  r: Pick<Role, "id" | "name" | "permissions" | "createdAt" | "updatedAt">,
  userCount: number,
): RoleMsg {
  return create(RoleSchema, {
    id: r.id,
    name: r.name,
    permissions: r.permissions.map(permissionFromName).filter((p) => p !== Permission.UNSPECIFIED),
    userCount: BigInt(userCount),
    createTime: ts(r.createdAt),
    updateTime: ts(r.updatedAt),
  });
}

export function toOrganizationMsg(
  o: Pick<Organization, "id" | "name" | "createdAt" | "updatedAt">,
  userCount: number,
): OrganizationMsg {
  return create(OrganizationSchema, {
    id: o.id,
    name: o.name,
    userCount: BigInt(userCount),
    createTime: ts(o.createdAt),
    updateTime: ts(o.updatedAt),
  });
}

export function toApiKeyMsg(k: ApiKey): ApiKeyMsg {
  return create(ApiKeySchema, {
    id: k.id,
    userId: k.user.id,
    name: k.name,
    maskedKey: k.masked,
    kind: k.kind === "session" ? ApiKeyKind.SESSION : ApiKeyKind.STANDARD,
    expireTime: ts(k.expiresAt),
    revokeTime: ts(k.revokedAt),
    lastUseTime: ts(k.lastUsedAt),
    createTime: ts(k.createdAt),
    limits: keyLimitsMsg(keyLimitsOfKey(k)),
  });
}

/** A key's limits from a request: undefined when the message is unset, null when it sets no limit at all. */
export function keyLimitsFromMsg(l: KeyLimitsMsg | undefined): KeyLimits | null | undefined {
  if (l === undefined) return undefined;
  const limits: KeyLimits = {
    requestsPerMinute: l.requestsPerMinute ?? null,
    requestsPerDay: l.requestsPerDay ?? null,
    tokensPerMinute: l.tokensPerMinute ?? null,
    tokensPerDay: l.tokensPerDay ?? null,
  };
  return Object.values(limits).every((v) => v === null) ? null : limits;
}

function keyLimitsMsg(l: KeyLimits | null): KeyLimitsMsg | undefined {
  if (l === null) return undefined;
  return create(KeyLimitsSchema, {
    requestsPerMinute: l.requestsPerMinute ?? undefined,
    requestsPerDay: l.requestsPerDay ?? undefined,
    tokensPerMinute: l.tokensPerMinute ?? undefined,
    tokensPerDay: l.tokensPerDay ?? undefined,
  });
}

function limitUsageMsg(u: LimitUsageView | null): MessageInitShape<typeof LimitUsageSchema> | undefined {
  if (u === null) return undefined;
  return {
    limit: u.limit,
    remaining: u.remaining ?? undefined,
    resetSeconds: u.resetMs === null ? undefined : Math.ceil(u.resetMs / 1000),
    roleLimit: u.roleLimit ?? undefined,
    keyLimit: u.keyLimit ?? undefined,
  };
}

export function toModelLimitUsageMsg(v: ModelLimitView): ModelLimitUsage {
  return create(ModelLimitUsageSchema, {
    model: v.model,
    requestsPerMinute: limitUsageMsg(v.perLimit.requestsPerMinute),
    requestsPerDay: limitUsageMsg(v.perLimit.requestsPerDay),
    tokensPerMinute: limitUsageMsg(v.perLimit.tokensPerMinute),
    tokensPerDay: limitUsageMsg(v.perLimit.tokensPerDay),
  });
}
