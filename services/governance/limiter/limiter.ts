/**
 * Rate limits per role × model (requests and tokens, per minute and per day), enforced before forwarding by
 * reserve → settle. Two stores honour one contract (limiter.contract.ts): Redis (shared by every process) and an
 * in-process map (the embedded default, and the fallback of the outage policy in resilient-limiter.ts).
 *
 * Accounting: a bucketed sliding window. Each window (W ms) is cut into `buckets` sub-buckets of b = W / buckets
 * ms; a decision counts every bucket that overlaps [now − W, now], i.e. the last `buckets` whole buckets plus the
 * current one. Why this and not the alternatives:
 * - Exact upper bound: in ANY interval of length W, admitted usage ≤ limit (at the last admission in the interval,
 *   everything admitted since its start was counted). The price is that an old bucket is forgotten up to b ms
 *   late (the effective window is between W and W + b): conservative, never lenient. The classic two-window
 *   "sliding window counter" interpolates and may admit ~2× the limit in a bursty window; GCRA (a token bucket)
 *   lets a full burst plus the refill through in one window, which breaks "≤ limit per window".
 * - Exact, cheap settle: a reservation remembers its bucket index, so settle adds (actual − estimate) to that very
 *   bucket — unused tokens go back to the window they were taken from, with no rounding. A sliding log would be
 *   exact too but keeps one entry per request (a day of them) and O(n) sums.
 * - O(1) amortized per decision: each counter keeps running totals (R requests, T tokens) next to its buckets;
 *   buckets are subtracted and deleted as they leave the window (at most `buckets` per call, in practice ~1).
 * Requests are never returned by settle (a failed upstream call still was a request); tokens are.
 *
 * Subjects: a decision checks the role's limits counted for `subject` (normally the user: all of a user's keys
 * share them) and, when the key has an override, the key's limits counted for that key alone. Both are checked in
 * one atomic step and all-or-nothing: if any of the (up to 8) limits would be exceeded, nothing is counted. A key
 * override can only tighten: the subject's counters include the key's traffic, so a looser key limit never binds.
 * Counting starts when a limit is set: a (scope, window) with both limits null is not counted at all.
 * 0 = forbidden is decided without any store (and so stays enforced when the store is down).
 *
 * Redis key layout (prefix defaults to `passerelle:rl:`), with tag = hash(subject, model):
 *   {tag}:s:m  {tag}:s:d                   subject counters, minute and day (hashes: o, l, R, T, r<j>, t<j>)
 *   {tag}:k:<hash(key id)>:m  …:d          key-override counters
 *   {tag}:res:<reservation id>             the reservation marker, deleted by the first settle (idempotency)
 * One hash tag per decision puts every key of a decision in one Redis Cluster slot; tagging by subject + model
 * (not by role) spreads load per user and model, and the key scope belongs to its subject so it shares the tag.
 * Every key has a PEXPIRE: counters live until their newest bucket leaves the window, markers one window + b.
 * Time is the Redis server's TIME, read inside the script: every process sharing Redis (and every node of a
 * Cluster slot) agrees on bucket boundaries whatever the clocks of the gateway hosts.
 */

/** Limits of one scope for one model. null = unlimited, 0 = forbidden. */
export interface Limits {
  requestsPerMinute: number | null;
  requestsPerDay: number | null;
  tokensPerMinute: number | null;
  tokensPerDay: number | null;
}

/** The name of one limit. */
export type LimitName = keyof Limits;

/** What one decision is about. */
export interface ReserveInput {
  /** Whom the role's limits are counted for: the user id (all of a user's keys together). */
  subject: string;
  /** The model requested (the public model name). */
  model: string;
  /** The role's limits for this model. */
  limits: Limits;
  /** The API key's override limits for this model, if any: checked too, counted per key. */
  key?: { id: string; limits: Limits };
  /** Estimated tokens: prompt tokens + max_tokens (or the configured default when the client set none). */
  tokens: number;
}

/** Where a limit stands, for the x-ratelimit-* headers. */
export interface LimitStatus {
  limit: number;
  remaining: number;
  /** Milliseconds until the usage counted now has left the window (the limit is back to its initial state). */
  resetMs: number;
}

/** What status() reads: a decision's subject, model and limits, without tokens (nothing is counted). */
export type StatusInput = Omit<ReserveInput, "tokens">;

/** Where one limit stands, and whose it is. */
export interface ScopedLimitStatus extends LimitStatus {
  /** The role's limit (counted for the subject) or the key override's (counted for the key). */
  scope: "subject" | "key";
}

/** A status() answer: where every limit of a (subject, model, key) stands now. */
export interface LimitsStatus {
  /** false when the store could not be read (an outage): every status below is then null. */
  known: boolean;
  /** The tightest requests limit, as in a Decision (least remaining over minute/day and both scopes). */
  requests: LimitStatus | null;
  /** The tightest tokens limit. */
  tokens: LimitStatus | null;
  /**
   * Each limit on its own: the tighter of the role's and the key's (least remaining; ties: the smaller limit).
   * null: neither scope sets it (unlimited), or the store could not be read.
   */
  perLimit: Record<LimitName, ScopedLimitStatus | null>;
}

/** Why a decision was refused. */
export interface Refusal {
  /** "exhausted": retry later; "forbidden": the limit is 0; "too_large": the estimate alone exceeds the limit;
   * "unavailable": the store is down and the policy is fail-closed. */
  reason: "exhausted" | "forbidden" | "too_large" | "unavailable";
  /** The binding limit (absent for "unavailable"). */
  limit?: LimitName;
  /** Whose limit: the role's (counted for the subject) or the key override's. */
  scope?: "subject" | "key";
  /** The binding limit's value. */
  value?: number;
}

/** How a decision was taken, for the metrics layer: every degraded decision has its own outcome. */
export type DecisionOutcome = "allowed" | "refused" | "degraded_open" | "degraded_closed" | "degraded_local";

/** A reserve() answer. */
export interface Decision {
  allowed: boolean;
  outcome: DecisionOutcome;
  /** Pass it to settle() when the response ends; null when nothing was counted (refused, unlimited, fail-open). */
  reservation: Reservation | null;
  /** The tightest requests limit (least remaining over minute/day and both scopes); null: unlimited or unknown. */
  requests: LimitStatus | null;
  /** The tightest tokens limit; null: unlimited or unknown. */
  tokens: LimitStatus | null;
  /** Set when refused. */
  refusal?: Refusal;
  /** When refused and waiting helps: seconds after which the same request fits (the Retry-After header). */
  retryAfterSeconds?: number;
  /** The same in milliseconds (unrounded). */
  retryAfterMs?: number;
}

/** One counter a reservation was counted in. */
export interface ReservedCounter {
  /** The counter's key, without the store's prefix. */
  key: string;
  window: WindowName;
  /** The bucket index the reservation was counted in. */
  bucket: number;
}

/** What settle() needs; plain data (it can cross a process boundary). */
export interface Reservation {
  id: string;
  /** The store that counted it: settle goes back to the same one. */
  backend: "redis" | "memory";
  /** The marker key, without prefix. */
  marker: string;
  /** The estimated tokens that were reserved. */
  tokens: number;
  counters: ReservedCounter[];
}

/** The rate-limit engine. */
export interface RateLimiter {
  readonly kind: "redis" | "memory" | "resilient";
  /** Atomically checks every limit of the decision and, when all fit, counts one request and `input.tokens`. */
  reserve(input: ReserveInput): Promise<Decision>;
  /**
   * Settles a reservation with the real usage: returns unused tokens to the bucket they were taken from, or
   * charges the excess. Idempotent: only the first call counts (true); later ones, null, or a reservation older
   * than its window do nothing (false).
   */
  settle(reservation: Reservation | null, actualTokens: number): Promise<boolean>;
  /**
   * Where the limits of `input` stand now, read without reserving or writing anything (the same windows as
   * reserve()). A limit of 0 reads as exhausted. For views such as GET /v1/me, not for admission.
   */
  status(input: StatusInput): Promise<LimitsStatus>;
  close(): Promise<void>;
}

/** The two windows. */
export type WindowName = "minute" | "day";

/** A window's length and how many buckets it is cut into (the length must be a multiple of the count). */
export interface WindowSpec {
  ms: number;
  buckets: number;
}

/**
 * Window lengths: shorter ones are for tests. Every process sharing a Redis must use the same values (the keys
 * do not carry them).
 */
export interface LimiterWindows {
  minute: WindowSpec;
  day: WindowSpec;
}

/** 1 s buckets for the minute, 15 min buckets for the day. */
export const DEFAULT_WINDOWS: LimiterWindows = Object.freeze({
  minute: Object.freeze({ ms: 60_000, buckets: 60 }),
  day: Object.freeze({ ms: 86_400_000, buckets: 96 }),
});

/** No limits at all. */
export const UNLIMITED: Limits = Object.freeze({
  requestsPerMinute: null,
  requestsPerDay: null,
  tokensPerMinute: null,
  tokensPerDay: null,
});
