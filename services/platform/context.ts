import { createContextKey } from "@connectrpc/connect";
import type { Logger } from "pino";

/** Who is calling: resolved once per request by the auth interceptor. */
export interface Principal {
  readonly userId: string;
  readonly email: string;
  readonly name: string;
  readonly roleId: string;
  readonly roleName: string;
  readonly permissions: ReadonlySet<string>;
  readonly organizationId: string | null;
  readonly userExpiresAt: Date | null;
  readonly keyId: string;
  readonly keyExpiresAt: Date | null;
}

/** Set by the auth interceptor on every authenticated call; undefined on public RPCs. */
export const kPrincipal = createContextKey<Principal | undefined>(undefined, { description: "principal" });
export const kRequestId = createContextKey<string>("", { description: "request id" });
export const kLogger = createContextKey<Logger | undefined>(undefined, { description: "logger" });
