import type { LimitStatus } from "./limiter/limiter.js";

/**
 * What this process last learned of a caller's limits on a model (per API key: a key may have its own override),
 * to tell whether the caller's next call is all but sure to be admitted. When it is, the gateway sends the call to
 * the model server while the limiter's reservation is still being decided (Governor.mayForwardEarly): the Redis
 * round trip then overlaps the upstream's answer instead of preceding it. The decision stays the one that counts:
 * nothing reaches the client before it, and a refusal aborts the upstream call.
 *
 * "All but sure" means: the last decision for the same (caller, model, key) was allowed in full (limits and budget,
 * not degraded), less than `maxAgeMs` ago, and what it left — less every reservation of this process still
 * undecided, and less this call — keeps a margin of `margin` × the limit, on requests and on tokens (an unlimited
 * kind always fits). Undecided reservations are subtracted so that a burst of calls does not all ride on one
 * decision; the margin covers what other processes sharing Redis admitted in the meantime. A refusal forgets the
 * caller: its next call waits for its decision, so a caller kept at its limit never reaches the upstream.
 */
export interface Headroom {
  /** Whether the call fits what the last decision left, with the margin (see above). */
  ample(key: string, tokens: number): boolean;
  /** A reservation of `tokens` for `key` is being decided. */
  pending(key: string, tokens: number): void;
  /** Its decision: what an allowed decision left, or null for anything else (refused, degraded, failed). */
  decided(key: string, tokens: number, left: { requests: LimitStatus | null; tokens: LimitStatus | null } | null): void;
  /** Callers tracked (for tests). */
  readonly size: number;
}

interface Entry {
  /** When the last allowed decision came (epoch ms); -Infinity: none, or forgotten after a refusal. */
  at: number;
  requests: LimitStatus | null;
  tokens: LimitStatus | null;
  pendingRequests: number;
  pendingTokens: number;
}

export interface HeadroomOptions {
  /** How old a decision may be and still vouch for the next call. */
  maxAgeMs?: number;
  /** The share of each limit that must remain after the call. */
  margin?: number;
  /** Beyond this many callers, those with nothing pending and no fresh decision are dropped (see sweep). */
  maxEntries?: number;
  now?: () => number;
}

export function createHeadroom(opts: HeadroomOptions = {}): Headroom {
  const maxAgeMs = opts.maxAgeMs ?? 1_000;
  const margin = opts.margin ?? 0.1;
  const maxEntries = opts.maxEntries ?? 10_000;
  const now = opts.now ?? Date.now;
  const entries = new Map<string, Entry>();

  const fits = (s: LimitStatus | null, pending: number, need: number) =>
    s === null || s.remaining - pending - need >= Math.max(1, Math.ceil(s.limit * margin));

  let swept = Number.NEGATIVE_INFINITY;
  /**
   * Drops callers that vouch for nothing and wait for nothing, once the map is over its size: at most once per
   * `maxAgeMs`, so that many callers all fresh at once cost one pass, not one per call.
   */
  function sweep(t: number) {
    if (entries.size < maxEntries || t - swept < maxAgeMs) return;
    swept = t;
    for (const [k, e] of entries) {
      if (e.pendingRequests === 0 && t - e.at > maxAgeMs) entries.delete(k);
    }
  }

  return {
    ample(key, tokens) {
      const e = entries.get(key);
      if (!e || now() - e.at > maxAgeMs) return false;
      return fits(e.requests, e.pendingRequests, 1) && fits(e.tokens, e.pendingTokens, tokens);
    },
    pending(key, tokens) {
      let e = entries.get(key);
      if (!e) {
        sweep(now());
        e = { at: Number.NEGATIVE_INFINITY, requests: null, tokens: null, pendingRequests: 0, pendingTokens: 0 };
        entries.set(key, e);
      }
      e.pendingRequests++;
      e.pendingTokens += tokens;
    },
    decided(key, tokens, left) {
      const e = entries.get(key);
      if (!e) return;
      e.pendingRequests = Math.max(0, e.pendingRequests - 1);
      e.pendingTokens = Math.max(0, e.pendingTokens - tokens);
      if (left) {
        e.at = now();
        e.requests = left.requests;
        e.tokens = left.tokens;
      } else if (e.pendingRequests === 0) {
        entries.delete(key);
      } else {
        e.at = Number.NEGATIVE_INFINITY;
      }
    },
    get size() {
      return entries.size;
    },
  };
}
