import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { type Timestamp, timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  ApiKeyState,
  type GetMeResponse,
  PermissionListSchema,
} from "../../gen/passerelle/accounts/v1/account_service_pb.js";
import {
  type ApiKey,
  ApiKeyKind,
  type KeyLimits,
  type KeyLimitsSchema,
  type LimitUsage,
  type Organization,
  Permission,
  type Role,
  type User,
} from "../../gen/passerelle/accounts/v1/resources_pb.js";

/** Pure translations between the REST JSON of the accounts API and its protobuf messages. */

export const PERMISSIONS = ["admin", "create_public_collection", "read_metrics"] as const;
export type PermissionName = (typeof PERMISSIONS)[number];
const PERMISSION_BY_NAME: Record<PermissionName, Permission> = {
  admin: Permission.ADMIN,
  create_public_collection: Permission.CREATE_PUBLIC_COLLECTION,
  read_metrics: Permission.READ_METRICS,
};
const NAME_BY_PERMISSION = new Map(Object.entries(PERMISSION_BY_NAME).map(([n, v]) => [v, n]));

export const KEY_STATES = ["active", "expired", "revoked"] as const;
export type KeyStateName = (typeof KEY_STATES)[number];
const KEY_STATE: Record<KeyStateName, ApiKeyState> = {
  active: ApiKeyState.ACTIVE,
  expired: ApiKeyState.EXPIRED,
  revoked: ApiKeyState.REVOKED,
};

/** Unix seconds, as everywhere in OpenAI's API; null when unset. */
export function unix(ts: Timestamp | undefined): number | null {
  return ts ? Number(ts.seconds) : null;
}

export function timestampFromUnix(seconds: number): Timestamp {
  return timestampFromMs(seconds * 1000);
}

export function permissionsToProto(names: PermissionName[]): Permission[] {
  return names.map((n) => PERMISSION_BY_NAME[n]);
}

export function permissionListToProto(names: PermissionName[]) {
  return create(PermissionListSchema, { permissions: permissionsToProto(names) });
}

export function permissionsFromProto(values: Permission[]): string[] {
  return values.map((v) => NAME_BY_PERMISSION.get(v)).filter((n): n is string => n !== undefined);
}

export function keyStateToProto(state: KeyStateName | undefined): ApiKeyState {
  return state ? KEY_STATE[state] : ApiKeyState.UNSPECIFIED;
}

export function userJson(u: User) {
  return {
    object: "user" as const,
    id: u.id,
    email: u.email,
    name: u.name,
    role: u.roleId,
    organization: u.organizationId || null,
    expires: unix(u.expireTime),
    has_password: u.hasPassword,
    created: unix(u.createTime) ?? 0,
    updated: unix(u.updateTime) ?? 0,
  };
}

export function roleJson(r: Role) {
  return {
    object: "role" as const,
    id: r.id,
    name: r.name,
    permissions: permissionsFromProto(r.permissions),
    users: Number(r.userCount),
    created: unix(r.createTime) ?? 0,
    updated: unix(r.updateTime) ?? 0,
  };
}

export function organizationJson(o: Organization) {
  return {
    object: "organization" as const,
    id: o.id,
    name: o.name,
    users: Number(o.userCount),
    created: unix(o.createTime) ?? 0,
    updated: unix(o.updateTime) ?? 0,
  };
}

/** A key's limits as the REST API takes them: null or absent = none of that kind. */
export interface KeyLimitsJson {
  requests_per_minute?: number | null;
  requests_per_day?: number | null;
  tokens_per_minute?: number | null;
  tokens_per_day?: number | null;
}

/** A request's key limits: an empty message for null (no limits), undefined when absent. */
export function keyLimitsToProto(
  l: KeyLimitsJson | null | undefined,
): MessageInitShape<typeof KeyLimitsSchema> | undefined {
  if (l === undefined) return undefined;
  return {
    requestsPerMinute: l?.requests_per_minute ?? undefined,
    requestsPerDay: l?.requests_per_day ?? undefined,
    tokensPerMinute: l?.tokens_per_minute ?? undefined,
    tokensPerDay: l?.tokens_per_day ?? undefined,
  };
}

export function keyLimitsJson(l: KeyLimits | undefined) {
  return {
    requests_per_minute: l?.requestsPerMinute ?? null,
    requests_per_day: l?.requestsPerDay ?? null,
    tokens_per_minute: l?.tokensPerMinute ?? null,
    tokens_per_day: l?.tokensPerDay ?? null,
  };
}

function limitUsageJson(u: LimitUsage | undefined) {
  if (!u) return null;
  return {
    limit: u.limit,
    remaining: u.remaining ?? null,
    reset_seconds: u.resetSeconds ?? null,
    role_limit: u.roleLimit ?? null,
    key_limit: u.keyLimit ?? null,
  };
}

export function apiKeyJson(k: ApiKey, secret?: string) {
  return {
    object: "api_key" as const,
    id: k.id,
    name: k.name,
    user: k.userId,
    kind: k.kind === ApiKeyKind.SESSION ? "session" : "standard",
    masked_key: k.maskedKey,
    ...(secret === undefined ? {} : { key: secret }),
    expires: unix(k.expireTime),
    revoked: unix(k.revokeTime),
    last_used: unix(k.lastUseTime),
    created: unix(k.createTime) ?? 0,
    limits: keyLimitsJson(k.limits),
  };
}

export function meJson(me: GetMeResponse) {
  const u = me.user;
  return {
    object: "me" as const,
    id: u?.id ?? "",
    email: u?.email ?? "",
    name: u?.name ?? "",
    organization: me.organization ? { id: me.organization.id, name: me.organization.name } : null,
    role: me.role ? { id: me.role.id, name: me.role.name } : null,
    permissions: me.role ? permissionsFromProto(me.role.permissions) : [],
    expires: unix(u?.expireTime),
    expired: me.expired,
    key_id: me.apiKeyId,
    created: unix(u?.createTime) ?? 0,
    limits: me.limits.map((m) => ({
      model: m.model,
      requests_per_minute: limitUsageJson(m.requestsPerMinute),
      requests_per_day: limitUsageJson(m.requestsPerDay),
      tokens_per_minute: limitUsageJson(m.tokensPerMinute),
      tokens_per_day: limitUsageJson(m.tokensPerDay),
    })),
  };
}

/** OpenAI's list envelope with cursor paging: `after=<last_id>` fetches the next page. */
export function listJson<T extends { id: string }>(data: T[], nextPageToken: string) {
  return {
    object: "list" as const,
    data,
    first_id: data[0]?.id ?? null,
    last_id: data[data.length - 1]?.id ?? null,
    has_more: nextPageToken !== "",
  };
}
