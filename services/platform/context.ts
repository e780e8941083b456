import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import { unauthenticated } from "./errors.js";

/** An API key's own rate limits (null = none of that kind, 0 = refused); the governance limiter's `Limits` shape. */
export interface KeyLimits {
  readonly requestsPerMinute: number | null;
  readonly requestsPerDay: number | null;
  readonly tokensPerMinute: number | null;
  readonly tokensPerDay: number | null;
}

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
  /**
   * The calling key's own rate limits, checked beside the role's on every model; null or absent = none (a key whose
   * four limits are all null has none). Optional so that principals built by hand (tests, internal calls) need not
   * name it.
   */
  readonly keyLimits?: KeyLimits | null;
}

/** Set by the auth interceptor on every authenticated call; undefined on public RPCs. */
export const kPrincipal = createContextKey<Principal | undefined>(undefined, { description: "principal" });
export const kRequestId = createContextKey<string>("", { description: "request id" });

/**
 * The endpoint a model call is recorded under in the usage ledger, when a service calls another on a user's behalf
 * (`search`, `documents`); absent = the RPC's own (`embeddings`, …). Only code in this process can set it.
 */
export const kUsageEndpoint = createContextKey<string | undefined>(undefined, { description: "usage endpoint" });

/** The caller of an authenticated RPC; Unauthenticated when absent (a handler reached without the auth interceptor). */
export function principalOf(ctx: HandlerContext): Principal {
  const p = ctx.values.get(kPrincipal);
  if (!p) throw unauthenticated("Missing API key.", "MISSING_API_KEY");
  return p;
}
