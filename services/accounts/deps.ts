import type { Logger } from "pino";
import type { KvStore } from "../platform/kv/kv.js";
import type { AccountStore } from "./account-store.js";
import type { Authenticator } from "./authenticator.js";

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
  now?: () => Date;
}
