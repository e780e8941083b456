import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  type AccountService,
  GetMeResponseSchema,
  LoginResponseSchema,
  MeView,
  UpdateMeResponseSchema,
} from "../../gen/passerelle/accounts/v1/account_service_pb.js";
import { invalidArgument, notFound, resourceExhausted, unauthenticated } from "../platform/errors.js";
import type { AccountDeps } from "./deps.js";
import { toApiKeyMsg, toModelLimitUsageMsg, toOrganizationMsg, toRoleMsg, toUserMsg } from "./mappers.js";
import { generateApiKey, hashApiKey, hashPassword, maskApiKey, verifyPassword } from "./secrets.js";
import { principalOf, validEmail, validName, validPassword } from "./validation.js";

const FAILED_LOGIN_WINDOW_MS = 15 * 60_000;

type MeHandlers = Pick<ServiceImpl<typeof AccountService>, "getMe" | "updateMe" | "login">;

export function createMeHandlers(deps: AccountDeps): MeHandlers {
  const { store } = deps;
  const now = deps.now ?? (() => new Date());

  return {
    async getMe(req, ctx) {
      const p = principalOf(ctx);
      const user = await store.getUserProfile(p.userId);
      if (!user) throw notFound("user", p.userId);
      const expired = user.expiresAt != null && user.expiresAt <= now();
      // An expired user may call no model: their limits are moot. BASIC spares the lookups (a model list and one
      // limits-store read per model) to services that only need to know who calls.
      const withLimits = req.view !== MeView.BASIC && !expired && deps.limitsView !== undefined;
      const limits = withLimits ? await deps.limitsView?.(p) : undefined;
      // Member counts are an admin concern: not computed on this hot path (left 0).
      return create(GetMeResponseSchema, {
        user: toUserMsg(user),
        role: toRoleMsg(user.role, 0),
        organization: user.organization ? toOrganizationMsg(user.organization, 0) : undefined,
        expired,
        apiKeyId: p.keyId,
        limits: limits?.map(toModelLimitUsageMsg) ?? [],
      });
    },

    async updateMe(req, ctx) {
      const p = principalOf(ctx);
      const patch: { name?: string; passwordHash?: string } = {};
      if (req.name !== undefined) patch.name = validName(req.name, "name", 200);
      if (req.password !== undefined) {
        validPassword(req.password);
        const current = await store.getUser(p.userId);
        if (!req.currentPassword || !(await verifyPassword(current?.passwordHash, req.currentPassword))) {
          throw invalidArgument("'current_password' is wrong.", "current_password", "INVALID_CURRENT_PASSWORD");
        }
        patch.passwordHash = await hashPassword(req.password);
      }
      const user = await store.updateUser(p.userId, patch);
      if (!user) throw notFound("user", p.userId);
      return create(UpdateMeResponseSchema, { user: toUserMsg(user) });
    },

    async login(req) {
      if (!req.email) throw invalidArgument("'email' is required.", "email");
      if (!req.password) throw invalidArgument("'password' is required.", "password");
      const email = validEmail(req.email);
      const throttleKey = `login-fail:${hashApiKey(email)}`;
      const failures = Number((await deps.kv.get(throttleKey)) ?? 0);
      if (failures >= deps.settings.maxFailedLogins) {
        const ttl = await deps.kv.pttl(throttleKey);
        throw resourceExhausted(
          "Too many failed logins for this account; try again later.",
          "TOO_MANY_FAILED_LOGINS",
          Math.max(1, Math.ceil(ttl / 1000)),
        );
      }
      const user = await store.getUserByEmail(email);
      if (!user || !(await verifyPassword(user.passwordHash, req.password))) {
        await deps.kv.incrBy(throttleKey, 1, FAILED_LOGIN_WINDOW_MS);
        throw unauthenticated("Invalid e-mail or password.", "INVALID_CREDENTIALS");
      }
      await deps.kv.del(throttleKey);
      const secret = generateApiKey();
      const key = await store.createKey({
        userId: user.id,
        name: "session",
        keyHash: hashApiKey(secret),
        masked: maskApiKey(secret),
        kind: "session",
        expiresAt: new Date(now().getTime() + deps.settings.sessionTtlSeconds * 1000),
      });
      return create(LoginResponseSchema, { apiKey: toApiKeyMsg(key), secret });
    },
  };
}
