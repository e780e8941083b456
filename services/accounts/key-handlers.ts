import { create } from "@bufbuild/protobuf";
import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  type AccountService,
  ApiKeyState,
  CreateApiKeyResponseSchema,
  GetApiKeyResponseSchema,
  ListApiKeysResponseSchema,
  RevokeApiKeyResponseSchema,
  UpdateApiKeyResponseSchema,
} from "../../gen/passerelle/accounts/v1/account_service_pb.js";
import { invalidArgument, notFound } from "../platform/errors.js";
import { decodePageToken, pageSize, paginate } from "../platform/paging.js";
import type { KeyState } from "./account-store.js";
import type { AccountDeps } from "./deps.js";
import { keyLimitsFromMsg, toApiKeyMsg } from "./mappers.js";
import { generateApiKey, hashApiKey, maskApiKey } from "./secrets.js";
import { lookupId, principalOf, requireAdmin, validName, validRef } from "./validation.js";

type KeyHandlers = Pick<
  ServiceImpl<typeof AccountService>,
  "createApiKey" | "listApiKeys" | "getApiKey" | "updateApiKey" | "revokeApiKey"
>;

const DAY_MS = 86_400_000;
const ANY_USER = "-";

/**
 * Which user's keys a call may touch. Empty: the caller's keys. `-` (any user) or any explicit id, the caller's
 * own included: admin only — an explicit owner is the admin API's scope (`/v1/admin/keys`), which a non-admin must
 * not reach even about themselves. `undefined` means no owner restriction.
 */
function ownerScope(userId: string, ctx: HandlerContext): string | undefined {
  const p = principalOf(ctx);
  if (userId === "") return p.userId;
  requireAdmin(p);
  if (userId === ANY_USER) return undefined;
  return validRef(userId, "user_id");
}

const STATES: Record<ApiKeyState, KeyState> = {
  [ApiKeyState.UNSPECIFIED]: undefined,
  [ApiKeyState.ACTIVE]: "active",
  [ApiKeyState.EXPIRED]: "expired",
  [ApiKeyState.REVOKED]: "revoked",
};

export function createKeyHandlers(deps: AccountDeps): KeyHandlers {
  const { store } = deps;
  const now = deps.now ?? (() => new Date());

  function expiry(requested: Timestamp | undefined): Date | null {
    const maxDays = deps.settings.keyMaxLifetimeDays;
    const t = now().getTime();
    const max = maxDays === undefined ? undefined : t + maxDays * DAY_MS;
    if (!requested) return max === undefined ? null : new Date(max);
    const at = timestampDate(requested);
    if (Number.isNaN(at.getTime()) || at.getTime() <= t) {
      throw invalidArgument("'expire_time' must be in the future.", "expire_time", "INVALID_EXPIRATION");
    }
    if (max !== undefined && at.getTime() > max) {
      throw invalidArgument(
        `'expire_time' is beyond the maximum key lifetime of ${maxDays} days.`,
        "expire_time",
        "INVALID_EXPIRATION",
      );
    }
    return at;
  }

  return {
    async createApiKey(req, ctx) {
      const owner = ownerScope(req.userId, ctx);
      if (owner === undefined) throw invalidArgument("'user_id' must name one user.", "user_id");
      const name = validName(req.name, "name", 100);
      const expiresAt = expiry(req.expireTime);
      if (owner !== principalOf(ctx).userId && !(await store.getUser(owner))) throw notFound("user", owner);
      const secret = generateApiKey();
      const key = await store.createKey({
        userId: owner,
        name,
        keyHash: hashApiKey(secret),
        masked: maskApiKey(secret),
        kind: "standard",
        expiresAt,
        limits: keyLimitsFromMsg(req.limits),
      });
      return create(CreateApiKeyResponseSchema, { apiKey: toApiKeyMsg(key), secret });
    },

    async listApiKeys(req, ctx) {
      const owner = ownerScope(req.userId, ctx);
      const size = pageSize(req.pageSize);
      const rows = await store.listKeys(
        { after: decodePageToken(req.pageToken), limit: size + 1 },
        { ownerId: owner, state: STATES[req.state] },
      );
      const page = paginate(rows, size);
      return create(ListApiKeysResponseSchema, {
        apiKeys: page.items.map(toApiKeyMsg),
        nextPageToken: page.nextPageToken,
      });
    },

    async getApiKey(req, ctx) {
      const owner = ownerScope(req.userId, ctx);
      const id = lookupId(req.id);
      const key = id ? await store.getKey(id, owner) : null;
      if (!key) throw notFound("api_key", req.id);
      return create(GetApiKeyResponseSchema, { apiKey: toApiKeyMsg(key) });
    },

    async updateApiKey(req, ctx) {
      const owner = ownerScope(req.userId, ctx);
      if (req.name === undefined && req.limits === undefined) {
        throw invalidArgument("Set 'name', 'limits' or both.", "name");
      }
      const name = req.name === undefined ? undefined : validName(req.name, "name", 100);
      const limits = keyLimitsFromMsg(req.limits);
      const id = lookupId(req.id);
      const key = id ? await store.updateKey(id, owner, { name, limits }) : null;
      if (!key) throw notFound("api_key", req.id);
      // Cached principals carry the key's limits: push the change out of every process's cache.
      if (limits !== undefined) await deps.authenticator.invalidateKeys([key.keyHash]);
      return create(UpdateApiKeyResponseSchema, { apiKey: toApiKeyMsg(key) });
    },

    async revokeApiKey(req, ctx) {
      const owner = ownerScope(req.userId, ctx);
      const id = lookupId(req.id);
      const key = id ? await store.revokeKey(id, owner) : null;
      if (!key) throw notFound("api_key", req.id);
      await deps.authenticator.invalidateKeys([key.keyHash]);
      return create(RevokeApiKeyResponseSchema, { apiKey: toApiKeyMsg(key) });
    },
  };
}
