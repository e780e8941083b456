import type { Logger } from "pino";
import type { KeyLimits, Principal } from "../platform/context.js";
import type { KvStore } from "../platform/kv/kv.js";
import type { AccountStore } from "./account-store.js";
import type { Authenticator } from "./authenticator.js";

/** Where one rate limit stands for a caller (a port: filled in by governance, see services/core.ts). */
export interface LimitUsageView {
  /** The limit that binds first: the role's or the key's, whichever has less left. */
  limit: number;
  /** What is left of it now; null when the limits store cannot be read. */
  remaining: number | null;
  /** Ms until all that was counted in the window has left it (0: nothing counted); null when unknown. */
  resetMs: number | null;
  /** The role's limit of this kind (null = none) and the calling key's (null = none). */
  roleLimit: number | null;
  keyLimit: number | null;
}

/** A caller's rate limits on one model they may use; a limit is null when neither the role nor the key sets it. */
export interface ModelLimitView {
  model: string;
  perLimit: Record<keyof KeyLimits, LimitUsageView | null>;
}

/** The caller's limits on every model they may use, as calls with their current key would be checked. */
export type LimitsView = (principal: Principal) => Promise<ModelLimitView[]>;

export interface AccountDeps {
  store: AccountStore;
  authenticator: Authenticator;
  kv: KvStore;
  logger: Logger;
  settings: {
    keyMaxLifetimeDays: number | undefined;
    sessionTtlSeconds: number;
    maxFailedLogins: number;
  };
  /** Rate limits for GetMe; absent = GetMe returns none (accounts alone, as in some tests). */
  limitsView?: LimitsView;
  now?: () => Date;
}
