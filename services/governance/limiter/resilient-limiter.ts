import type { Decision, DecisionOutcome, LimiterWindows, RateLimiter, ReserveInput } from "./limiter.js";
import { createMemoryLimiter } from "./memory-limiter.js";
import {
  countsNothing,
  staticRefusal,
  unknownStatus,
  unlimitedDecision,
  validateActualTokens,
  validateStatusInput,
} from "./plan.js";

/**
 * What a decision does when the shared store (Redis) errors or does not answer in time:
 * - "fail-open": admit (no counting, no headers). Availability first; limits are not enforced during the outage.
 * - "fail-closed": refuse (reason "unavailable", Retry-After `closedRetryAfterSeconds`; the bridge may prefer 503).
 * - "local": decide with an in-process limiter with the same limits. Each process then counts alone, so N
 *   processes admit up to N × the limit during the outage; counts start from what this process saw in earlier
 *   outages (nothing is synchronised back when Redis returns).
 * Whatever the policy, 0 = forbidden and an estimate larger than a limit are still refused (no store needed).
 * status() answers "unknown" (known: false) during an outage whatever the policy: a "local" limiter's counts are
 * this process's alone and would understate what was used.
 */
export type OutagePolicy = "fail-open" | "fail-closed" | "local";

/** Options of createResilientLimiter. */
export interface ResilientLimiterOptions {
  /** The shared limiter (normally createRedisLimiter). */
  primary: RateLimiter;
  policy: OutagePolicy;
  /** Bound on one primary reserve or status (default 100 ms, 1–5,000): slower counts as an outage. */
  timeoutMs?: number;
  /** Bound on one primary settle (default 1,000 ms): settles run after the response, latency matters less. */
  settleTimeoutMs?: number;
  /** After a failure, decisions skip the primary for this long and go straight to the policy (default 1,000 ms). */
  retryIntervalMs?: number;
  /** Retry-After of fail-closed refusals (default 1 s). */
  closedRetryAfterSeconds?: number;
  /** The per-process limiter of the "local" policy (default: a memory limiter with `windows`). */
  local?: RateLimiter;
  windows?: LimiterWindows;
  /** Called once per decision with its outcome: the metrics layer counts them (degraded_* = decided in an outage). */
  onDecision?: (outcome: DecisionOutcome) => void;
  /** Called with each primary failure (for logs); decisions go on regardless. */
  onError?: (err: unknown, op: "reserve" | "settle" | "status") => void;
  now?: () => number;
}

/**
 * The outage policy around a shared limiter: bounds every primary call, and when it fails or times out decides by
 * `policy` (a degraded decision, reported through onDecision). After an error, or `SLOW_BEFORE_SKIP` late answers in
 * a row (one late answer on a busy event loop is not an outage), it stops asking the primary for `retryIntervalMs`. A reservation the primary makes after its
 * reserve timed out is settled back with 0 tokens. settle() never throws, on store failures nor on invalid counts
 * (it answers false): it runs in finally blocks. Reservations go back to the limiter that made them (a "local" one
 * stays local).
 */
export function createResilientLimiter(opts: ResilientLimiterOptions): RateLimiter {
  const { primary, policy } = opts;
  const timeoutMs = bounded("timeoutMs", opts.timeoutMs ?? 250, 1, 5_000);
  const settleTimeoutMs = bounded("settleTimeoutMs", opts.settleTimeoutMs ?? 1_000, 1, 60_000);
  const retryIntervalMs = bounded("retryIntervalMs", opts.retryIntervalMs ?? 1_000, 0, 600_000);
  const closedRetryAfterSeconds = bounded("closedRetryAfterSeconds", opts.closedRetryAfterSeconds ?? 1, 1, 3_600);
  const now = opts.now ?? Date.now;
  const ownsLocal = policy === "local" && opts.local === undefined;
  const local = opts.local ?? (ownsLocal ? createMemoryLimiter({ windows: opts.windows, now }) : undefined);
  let skipUntil = 0;
  let slowInARow = 0;

  function report(decision: Decision): Decision {
    try {
      opts.onDecision?.(decision.outcome);
    } catch {
      // A metrics callback must not break admission.
    }
    return decision;
  }

  function failed(err: unknown, op: "reserve" | "settle" | "status"): void {
    try {
      opts.onError?.(err, op);
    } catch {
      // Same as report().
    }
  }

  async function degrade(input: ReserveInput): Promise<Decision> {
    const unknown = { reservation: null, requests: null, tokens: null };
    if (policy === "fail-open") return report({ allowed: true, outcome: "degraded_open", ...unknown });
    if (policy === "fail-closed") {
      return report({
        allowed: false,
        outcome: "degraded_closed",
        ...unknown,
        refusal: { reason: "unavailable" },
        retryAfterSeconds: closedRetryAfterSeconds,
        retryAfterMs: closedRetryAfterSeconds * 1_000,
      });
    }
    if (local === undefined) throw new Error("limiter: the local policy needs a local limiter");
    return report({ ...(await local.reserve(input)), outcome: "degraded_local" });
  }

  return {
    kind: "resilient",

    async reserve(input) {
      const refusal = staticRefusal(input);
      if (refusal !== null) return report(refusal);
      // Nothing to count (no limit on the role's grant nor on the key, e.g. an admin): no store is needed, so an
      // outage must not touch such calls.
      if (countsNothing(input)) return report(unlimitedDecision());
      if (now() < skipUntil) return degrade(input);
      const pending = primary.reserve(input);
      try {
        const decision = await withTimeout(pending, timeoutMs);
        slowInARow = 0;
        return report(decision);
      } catch (err) {
        // A failure, or several slow answers in a row, stops asking Redis for a while; one slow answer does not.
        if (!(err instanceof LimiterTimeout) || ++slowInARow >= SLOW_BEFORE_SKIP) skipUntil = now() + retryIntervalMs;
        failed(err, "reserve");
        // Landed after we gave up: give the tokens back (the request stays counted, as for any settle).
        pending
          .then((late) => (late.reservation === null ? false : primary.settle(late.reservation, 0)))
          .catch(() => undefined);
        return degrade(input);
      }
    },

    async settle(reservation, actualTokens) {
      // Inside the try: settle runs in finally blocks and fire-and-forget, where a rejection would go unhandled; a
      // count it cannot take (10.5, -5) is reported and answered false like a store failure.
      try {
        validateActualTokens(actualTokens);
        if (reservation === null) return false;
        if (local !== undefined && reservation.backend === "memory" && primary.kind !== "memory") {
          return await local.settle(reservation, actualTokens);
        }
        return await withTimeout(primary.settle(reservation, actualTokens), settleTimeoutMs);
      } catch (err) {
        failed(err, "settle");
        return false;
      }
    },

    async status(input) {
      validateStatusInput(input);
      if (now() < skipUntil) return unknownStatus();
      try {
        return await withTimeout(primary.status(input), timeoutMs);
      } catch (err) {
        // An outage seen here spares the next decisions their own timeout, as a failed reserve does.
        skipUntil = now() + retryIntervalMs;
        failed(err, "status");
        return unknownStatus();
      }
    },

    async close() {
      await primary.close();
      if (ownsLocal) await local?.close();
    },
  };
}

/** Rejects when `promise` has not settled within `ms`. */
/** A timeout that is not a connection failure: on a busy event loop an answer may be waiting in a socket buffer. */
class LimiterTimeout extends Error {}

/** Consecutive late answers after which the store is treated as down for `retryIntervalMs`. */
const SLOW_BEFORE_SKIP = 3;

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    // When the timer fires, the answer may already be read but not yet handed over (the timer phase runs before
    // the poll phase): give it one more turn of the event loop before calling it late.
    const timer = setTimeout(
      () => setImmediate(() => reject(new LimiterTimeout(`limiter: no answer within ${ms} ms`))),
      ms,
    );
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

function bounded(name: string, value: number, min: number, max: number): number {
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new RangeError(`limiter: ${name} must be between ${min} and ${max}, got ${value}`);
  }
  return value;
}
