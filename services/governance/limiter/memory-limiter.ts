import { randomUUID } from "node:crypto";
import { DEFAULT_WINDOWS, type LimiterWindows, type RateLimiter, type Reservation } from "./limiter.js";
import {
  type CounterPlan,
  composeDecision,
  composeStatus,
  markerKey,
  planDecision,
  planStatus,
  type RawOutcome,
  staticRefusal,
  unlimitedDecision,
  validateActualTokens,
  validateWindows,
} from "./plan.js";

/**
 * The in-process limiter: the same bucketed sliding window as the Redis script (redis-limiter.ts), step for step,
 * over Maps. Each call runs synchronously inside its promise, so a decision is atomic by construction. Counts are
 * per process: it is the embedded default (one process) and the outage fallback of resilient-limiter.ts.
 * `now` is injectable so tests can walk through real minute and day windows.
 */
export function createMemoryLimiter(opts?: { windows?: LimiterWindows; now?: () => number }): RateLimiter {
  const windows = validateWindows(opts?.windows ?? DEFAULT_WINDOWS);
  const now = opts?.now ?? Date.now;
  const counters = new Map<string, Counter>();
  /** Reservation marker → expiry (epoch ms). */
  const markers = new Map<string, number>();
  let closed = false;

  const sweep = setInterval(() => {
    const t = now();
    for (const [key, c] of counters) if (c.expiresAt <= t) counters.delete(key);
    for (const [key, expiresAt] of markers) if (expiresAt <= t) markers.delete(key);
  }, SWEEP_INTERVAL_MS);
  sweep.unref();

  function ensureOpen(): void {
    if (closed) throw new Error("RateLimiter (memory) is closed");
  }

  /** Drops the buckets older than `cutoff` from the totals; the whole counter when its newest bucket is. */
  function prune(key: string, cutoff: number, t: number): Counter | undefined {
    const c = counters.get(key);
    if (c === undefined) return undefined;
    if (c.expiresAt <= t || c.l < cutoff) {
      counters.delete(key);
      return undefined;
    }
    for (let j = c.o; j < cutoff; j++) {
      c.R -= c.r.get(j) ?? 0;
      c.T -= c.t.get(j) ?? 0;
      c.r.delete(j);
      c.t.delete(j);
    }
    if (c.o < cutoff) c.o = cutoff;
    return c;
  }

  /** What prune() would leave in the totals, without changing anything (for status()). */
  function peek(key: string, spec: Spec, cutoff: number, t: number) {
    const c = counters.get(key);
    if (c === undefined || c.expiresAt <= t || c.l < cutoff) return { requests: 0, tokens: 0, resetMs: 0 };
    let { R, T } = c;
    for (let j = c.o; j < cutoff; j++) {
      R -= c.r.get(j) ?? 0;
      T -= c.t.get(j) ?? 0;
    }
    return { requests: R, tokens: T, resetMs: (c.l + 1) * spec.bucketMs + spec.windowMs - t };
  }

  /** Adds to bucket j, creating the counter if needed, and moves its expiry to when its newest bucket ages out. */
  function add(key: string, spec: Spec, cutoff: number, j: number, requests: number, tokens: number): Counter {
    let c = counters.get(key);
    if (c === undefined) {
      c = { o: cutoff, l: j, R: 0, T: 0, r: new Map(), t: new Map(), expiresAt: 0 };
      counters.set(key, c);
    }
    if (requests !== 0) c.r.set(j, (c.r.get(j) ?? 0) + requests);
    c.t.set(j, (c.t.get(j) ?? 0) + tokens);
    c.R += requests;
    c.T += tokens;
    if (j > c.l) c.l = j;
    c.expiresAt = (c.l + 1) * spec.bucketMs + spec.windowMs;
    return c;
  }

  /** Ms until enough old buckets have left for `cost` to fit under `limit`; -1 when it never will. */
  function fitIn(
    c: Counter | undefined,
    kind: "r" | "t",
    used: number,
    cost: number,
    limit: number,
    spec: Spec,
    cutoff: number,
    t: number,
  ): number {
    if (cost > limit) return -1;
    const buckets = kind === "r" ? c?.r : c?.t;
    for (let j = cutoff; c !== undefined && j <= c.l; j++) {
      used -= buckets?.get(j) ?? 0;
      if (used + cost <= limit) return (j + 1) * spec.bucketMs + spec.windowMs - t;
    }
    return spec.windowMs + spec.bucketMs;
  }

  return {
    kind: "memory",

    async reserve(input) {
      ensureOpen();
      const refusal = staticRefusal(input);
      if (refusal !== null) return refusal;
      const plan = planDecision(input, windows);
      if (plan.counters.length === 0) return unlimitedDecision();
      const t = now();
      const cost = plan.tokens;
      let worst = -2;
      let failed = 0;
      let failedKind: 0 | 1 = 0;
      const states = plan.counters.map((spec, i) => {
        const idx = Math.floor(t / spec.bucketMs);
        const cutoff = idx - spec.buckets;
        const c = prune(spec.key, cutoff, t);
        const R = c?.R ?? 0;
        const T = c?.T ?? 0;
        const checks: [0 | 1, number | null, "r" | "t", number, number][] = [
          [0, spec.requests, "r", R, 1],
          [1, spec.tokens, "t", T, cost],
        ];
        for (const [kind, limit, field, used, need] of checks) {
          if (limit === null || used + need <= limit) continue;
          const retry = fitIn(c, field, used, need, limit, spec, cutoff, t);
          if (worst !== -1 && (retry === -1 || retry > worst)) {
            worst = retry;
            failed = i;
            failedKind = kind;
          }
        }
        return { spec, idx, cutoff, c };
      });
      const allowed = worst === -2;
      let reservation: Reservation | null = null;
      if (allowed) {
        for (const s of states) s.c = add(s.spec.key, s.spec, s.cutoff, s.idx, 1, cost);
        const id = randomUUID();
        const marker = markerKey(plan, id);
        markers.set(marker, t + plan.markerTtlMs);
        const reserved = states.map((s) => ({ key: s.spec.key, window: s.spec.window, bucket: s.idx }));
        reservation = { id, backend: "memory", marker, tokens: cost, counters: reserved };
      }
      const usage = states.map(({ spec, c }) => ({
        requests: c?.R ?? 0,
        tokens: c?.T ?? 0,
        resetMs: c === undefined ? 0 : (c.l + 1) * spec.bucketMs + spec.windowMs - t,
      }));
      const raw: RawOutcome = { allowed, retryAfterMs: worst, failed, failedKind, usage };
      return composeDecision(plan, raw, reservation);
    },

    async settle(reservation, actualTokens) {
      ensureOpen();
      validateActualTokens(actualTokens);
      if (reservation === null) return false;
      const t = now();
      const expiresAt = markers.get(reservation.marker);
      if (expiresAt === undefined) return false;
      markers.delete(reservation.marker);
      if (expiresAt <= t) return false;
      const delta = actualTokens - reservation.tokens;
      if (delta === 0) return true;
      for (const ref of reservation.counters) {
        const w = windows[ref.window];
        const spec: Spec = { windowMs: w.ms, bucketMs: w.ms / w.buckets };
        const idx = Math.floor(t / spec.bucketMs);
        const cutoff = idx - w.buckets;
        // Back into the bucket it was taken from while that bucket counts; an excess after it aged out is charged now.
        const j = ref.bucket >= cutoff ? ref.bucket : delta > 0 ? idx : null;
        if (j === null) continue;
        prune(ref.key, cutoff, t);
        add(ref.key, spec, cutoff, j, 0, delta);
      }
      return true;
    },

    async status(input) {
      ensureOpen();
      const plan = planStatus(input, windows);
      const t = now();
      const usage = plan.counters.map((spec) => peek(spec.key, spec, Math.floor(t / spec.bucketMs) - spec.buckets, t));
      return composeStatus(plan, usage);
    },

    async close() {
      if (closed) return;
      closed = true;
      clearInterval(sweep);
      counters.clear();
      markers.clear();
    },
  };
}

type Spec = Pick<CounterPlan, "windowMs" | "bucketMs">;

interface Counter {
  /** Oldest bucket index that may still hold counts. */
  o: number;
  /** Newest bucket index written. */
  l: number;
  /** Running totals of requests and tokens over buckets o..l. */
  R: number;
  T: number;
  r: Map<number, number>;
  t: Map<number, number>;
  /** Epoch ms at which the newest bucket leaves the window (the Redis PEXPIRE). */
  expiresAt: number;
}

const SWEEP_INTERVAL_MS = 30_000;
