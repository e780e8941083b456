// When this process's last decision vouches for a caller's next call (headroom.ts): the margin on each limit, the
// reservations still undecided, the decision's age, refusals forgetting the caller, and the bound on callers kept.
import { describe, expect, it } from "vitest";
import { createHeadroom } from "./headroom.js";

const status = (limit: number, remaining: number) => ({ limit, remaining, resetMs: 1_000 });

/** A headroom on a clock the test moves. */
function clocked(opts: { maxEntries?: number } = {}) {
  let t = 1_000_000;
  const h = createHeadroom({ now: () => t, maxAgeMs: 1_000, margin: 0.1, ...opts });
  /** One reservation of `tokens` for `key`, decided with `left`. */
  const decide = (key: string, tokens: number, left: Parameters<typeof h.decided>[2]) => {
    h.pending(key, tokens);
    h.decided(key, tokens, left);
  };
  return { h, decide, advance: (ms: number) => (t += ms) };
}

describe("headroom", () => {
  it("vouches for nothing before a first decision, nor while the first is being decided", () => {
    const { h } = clocked();
    expect(h.ample("a", 10)).toBe(false);
    h.pending("a", 10);
    expect(h.ample("a", 10)).toBe(false);
  });

  it("vouches while what the last decision left keeps 10 % of each limit after the call", () => {
    const { h, decide } = clocked();
    decide("a", 100, { requests: status(100, 50), tokens: status(10_000, 2_000) });
    expect(h.ample("a", 100)).toBe(true);
    // Tokens: 2,000 − 1,000 (the call) = 1,000 = 10 % of 10,000: still fits; one more token does not.
    expect(h.ample("a", 1_000)).toBe(true);
    expect(h.ample("a", 1_001)).toBe(false);
    // Requests: 11 left of 100 → 10 after this call = the margin; 10 left → 9: no.
    decide("a", 100, { requests: status(100, 11), tokens: null });
    expect(h.ample("a", 5)).toBe(true);
    decide("a", 100, { requests: status(100, 10), tokens: null });
    expect(h.ample("a", 5)).toBe(false);
  });

  it("keeps at least one request of margin on a small limit, and vouches on an unlimited kind", () => {
    const { h, decide } = clocked();
    decide("a", 1, { requests: status(3, 2), tokens: null });
    // 2 − 1 = 1 ≥ max(1, 0.3).
    expect(h.ample("a", 1)).toBe(true);
    decide("a", 1, { requests: status(3, 1), tokens: null });
    expect(h.ample("a", 1)).toBe(false);
    decide("b", 1, { requests: null, tokens: null });
    expect(h.ample("b", 1_000_000)).toBe(true);
  });

  it("subtracts the reservations still undecided: a burst does not all ride on one decision", () => {
    const { h, decide } = clocked();
    decide("a", 10, { requests: status(100, 14), tokens: status(1_000, 1_000) });
    let vouched = 0;
    for (let i = 0; i < 10; i++) {
      if (h.ample("a", 10)) vouched++;
      h.pending("a", 10);
    }
    // 14 left, margin 10: the first 4 fit (14 − 3 pending − 1 = 10), the 5th would leave 9.
    expect(vouched).toBe(4);
    // Their decisions come back: the latest one's figures, less what is still pending.
    for (let i = 0; i < 9; i++) h.decided("a", 10, { requests: status(100, 90), tokens: status(1_000, 900) });
    expect(h.ample("a", 10)).toBe(true);
  });

  it("subtracts undecided tokens too", () => {
    const { h, decide } = clocked();
    decide("a", 0, { requests: null, tokens: status(1_000, 600) });
    h.pending("a", 400);
    // 600 − 400 − 100 = 100 = the margin.
    expect(h.ample("a", 100)).toBe(true);
    expect(h.ample("a", 101)).toBe(false);
  });

  it("stops vouching once the last decision is older than maxAgeMs", () => {
    const { h, decide, advance } = clocked();
    decide("a", 1, { requests: status(100, 90), tokens: null });
    advance(1_000);
    expect(h.ample("a", 1)).toBe(true);
    advance(1);
    expect(h.ample("a", 1)).toBe(false);
  });

  it("forgets a caller on a refusal (or a degraded decision): its next call waits for its own decision", () => {
    const { h, decide } = clocked();
    decide("a", 1, { requests: status(100, 90), tokens: null });
    expect(h.ample("a", 1)).toBe(true);
    decide("a", 1, null);
    expect(h.ample("a", 1)).toBe(false);
    expect(h.size).toBe(0);
    // A refusal while others are pending: forgotten, but their decisions are still subtracted when they come.
    decide("a", 1, { requests: status(100, 90), tokens: null });
    h.pending("a", 1);
    decide("a", 1, null);
    expect(h.ample("a", 1)).toBe(false);
    h.decided("a", 1, { requests: status(100, 80), tokens: null });
    expect(h.ample("a", 1)).toBe(true);
  });

  it("keeps callers apart", () => {
    const { h, decide } = clocked();
    decide("a", 1, { requests: status(100, 90), tokens: null });
    expect(h.ample("a", 1)).toBe(true);
    expect(h.ample("b", 1)).toBe(false);
  });

  it("drops stale callers with nothing pending once over its size, at most once per maxAgeMs", () => {
    const { h, decide, advance } = clocked({ maxEntries: 3 });
    for (const k of ["a", "b", "c"]) decide(k, 1, { requests: status(100, 90), tokens: null });
    h.pending("c", 1);
    advance(1_001);
    decide("d", 1, { requests: status(100, 90), tokens: null });
    // a and b were stale; c has a reservation pending; d is new.
    expect(h.size).toBe(2);
    for (const k of ["e", "f"]) decide(k, 1, { requests: status(100, 90), tokens: null });
    expect(h.size).toBe(4);
    advance(1_001);
    decide("g", 1, { requests: status(100, 90), tokens: null });
    // d, e, f were stale by then.
    expect(h.size).toBe(2);
    expect(h.ample("g", 1)).toBe(true);
  });
});
