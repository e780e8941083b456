import { randomUUID } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type LimiterWindows, type Limits, type RateLimiter, type ReserveInput, UNLIMITED } from "./limiter.js";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Short windows so that real time can walk through them: a 600 ms "minute" (100 ms buckets), a 2 s "day". */
export const SHORT_WINDOWS: LimiterWindows = {
  minute: { ms: 600, buckets: 6 },
  day: { ms: 2_000, buckets: 4 },
};

/** Limits with everything unlimited except what `partial` sets. */
export function limits(partial: Partial<Limits>): Limits {
  return { ...UNLIMITED, ...partial };
}

/**
 * The behaviour every RateLimiter store must have. Real time with SHORT_WINDOWS (Redis keeps its own clock), and
 * a random subject per test (plus, for Redis, a random key prefix per limiter) so that tests never collide.
 */
export function limiterContract(name: string, make: (windows: LimiterWindows) => Promise<RateLimiter>): void {
  describe(`RateLimiter contract: ${name}`, () => {
    let limiter: RateLimiter;
    let subject: string;
    const input = (l: Partial<Limits>, tokens = 0, key?: { id: string; limits: Partial<Limits> }): ReserveInput => ({
      subject,
      model: "m",
      limits: limits(l),
      tokens,
      ...(key === undefined ? {} : { key: { id: key.id, limits: limits(key.limits) } }),
    });

    beforeEach(async () => {
      subject = `user-${randomUUID()}`;
      limiter = await make(SHORT_WINDOWS);
    });

    afterEach(async () => {
      await limiter.close();
    });

    it("admits without counting when everything is unlimited", async () => {
      const d = await limiter.reserve(input({}, 1_000));
      expect(d).toMatchObject({ allowed: true, outcome: "allowed", reservation: null, requests: null, tokens: null });
      expect(await limiter.settle(null, 5)).toBe(false);
    });

    it("counts requests and refuses beyond the limit with a retry-after inside the window", async () => {
      const rpm = { requestsPerMinute: 3 };
      for (const remaining of [2, 1, 0]) {
        const d = await limiter.reserve(input(rpm));
        expect(d.allowed).toBe(true);
        expect(d.requests).toMatchObject({ limit: 3, remaining });
        expect(d.requests?.resetMs).toBeGreaterThan(500);
        expect(d.requests?.resetMs).toBeLessThanOrEqual(700);
        expect(d.tokens).toBeNull();
      }
      const refused = await limiter.reserve(input(rpm));
      expect(refused).toMatchObject({ allowed: false, outcome: "refused", reservation: null, retryAfterSeconds: 1 });
      expect(refused.refusal).toEqual({ reason: "exhausted", limit: "requestsPerMinute", scope: "subject", value: 3 });
      expect(refused.requests).toMatchObject({ limit: 3, remaining: 0 });
      expect(refused.retryAfterMs).toBeGreaterThan(400);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(700);
      await sleep((refused.retryAfterMs ?? 0) + 30);
      expect((await limiter.reserve(input(rpm))).allowed).toBe(true);
    });

    it("is all-or-nothing: a refusal by one limit counts nothing in the others", async () => {
      const l = { requestsPerMinute: 10, tokensPerMinute: 50, requestsPerDay: 10 };
      expect((await limiter.reserve(input(l, 30))).allowed).toBe(true);
      const refused = await limiter.reserve(input(l, 30));
      expect(refused.refusal).toMatchObject({ reason: "exhausted", limit: "tokensPerMinute" });
      expect(refused.tokens).toMatchObject({ limit: 50, remaining: 20 });
      const next = await limiter.reserve(input(l, 20));
      expect(next.allowed).toBe(true);
      expect(next.requests).toMatchObject({ limit: 10, remaining: 8 });
      expect(next.tokens).toMatchObject({ limit: 50, remaining: 0 });
    });

    it("settle returns unused tokens, charges an excess, and only the first settle counts", async () => {
      const tpm = { tokensPerMinute: 100 };
      const a = await limiter.reserve(input(tpm, 40));
      const b = await limiter.reserve(input(tpm, 40));
      expect(b.tokens).toMatchObject({ limit: 100, remaining: 20 });
      expect((await limiter.reserve(input(tpm, 40))).allowed).toBe(false);
      expect(await limiter.settle(a.reservation, 10)).toBe(true);
      expect(await limiter.settle(a.reservation, 0)).toBe(false);
      const c = await limiter.reserve(input(tpm, 40));
      expect(c.tokens).toMatchObject({ remaining: 10 }); // 10 + 40 + 40
      expect(await limiter.settle(b.reservation, 45)).toBe(true); // 5 more than reserved
      expect(await limiter.settle(c.reservation, 40)).toBe(true); // exact: nothing to move
      expect(await limiter.settle(c.reservation, 0)).toBe(false);
      const d = await limiter.reserve(input(tpm, 5));
      expect(d.allowed).toBe(true);
      expect(d.tokens).toMatchObject({ remaining: 0 }); // 10 + 45 + 40 + 5
    });

    it("settles into the day window too; after the reservation's windows have passed, only an excess", async () => {
      const l = { tokensPerMinute: 100, tokensPerDay: 150 };
      const a = await limiter.reserve(input(l, 100));
      expect(a.tokens).toMatchObject({ limit: 100, remaining: 0 }); // the minute (0 left) is tighter than the day (50)
      await limiter.settle(a.reservation, 20);
      const b = await limiter.reserve(input(l, 80));
      expect(b.tokens).toMatchObject({ limit: 100, remaining: 0 });
      expect((await limiter.reserve(input(l, 60))).refusal?.limit).toBe("tokensPerDay");
      // A request that outlives its window (a long stream): what it did not use is not given back to a window it no
      // longer counts in, and what it used beyond its reservation is charged when it ends.
      const tpm = { tokensPerMinute: 10 };
      const late = await limiter.reserve({ ...input(tpm, 10), model: "late" });
      const long = await limiter.reserve({ ...input(tpm, 4), model: "long" });
      expect(late.allowed && long.allowed).toBe(true);
      await sleep(750);
      expect(await limiter.settle(late.reservation, 0)).toBe(true);
      expect((await limiter.reserve({ ...input(tpm, 10), model: "late" })).tokens).toMatchObject({ remaining: 0 });
      expect(await limiter.settle(long.reservation, 9)).toBe(true); // 5 beyond its reservation
      expect(await limiter.settle(long.reservation, 9)).toBe(false); // once
      expect((await limiter.reserve({ ...input(tpm, 6), model: "long" })).allowed).toBe(false);
      expect((await limiter.reserve({ ...input(tpm, 5), model: "long" })).tokens).toMatchObject({ remaining: 0 });
    });

    it("refuses a zero limit as forbidden and an estimate above a limit as too large, counting nothing", async () => {
      const forbidden = await limiter.reserve(input({ requestsPerDay: 0, requestsPerMinute: 5 }));
      expect(forbidden).toMatchObject({ allowed: false, outcome: "refused", reservation: null });
      expect(forbidden.refusal).toEqual({ reason: "forbidden", limit: "requestsPerDay", scope: "subject", value: 0 });
      expect(forbidden.retryAfterSeconds).toBeUndefined();
      const keyForbids = await limiter.reserve(input({}, 0, { id: "k", limits: { tokensPerMinute: 0 } }));
      expect(keyForbids.refusal).toMatchObject({ reason: "forbidden", scope: "key" });
      const tooLarge = await limiter.reserve(input({ tokensPerMinute: 100, requestsPerMinute: 5 }, 101));
      expect(tooLarge.refusal).toEqual({ reason: "too_large", limit: "tokensPerMinute", scope: "subject", value: 100 });
      expect(tooLarge.retryAfterSeconds).toBeUndefined();
      const ok = await limiter.reserve(input({ tokensPerMinute: 100, requestsPerMinute: 5 }, 100));
      expect(ok.requests).toMatchObject({ remaining: 4 });
    });

    it("checks a key override beside the role's limits: it can only tighten", async () => {
      const role = { requestsPerMinute: 5 };
      const tight = { id: "key-a", limits: { requestsPerMinute: 2 } };
      expect((await limiter.reserve(input(role, 0, tight))).requests).toMatchObject({ limit: 2, remaining: 1 });
      expect((await limiter.reserve(input(role, 0, tight))).requests).toMatchObject({ limit: 2, remaining: 0 });
      const byKey = await limiter.reserve(input(role, 0, tight));
      expect(byKey.refusal).toMatchObject({ limit: "requestsPerMinute", scope: "key", value: 2 });
      const loose = { id: "key-b", limits: { requestsPerMinute: 100 } };
      for (let i = 0; i < 3; i++) expect((await limiter.reserve(input(role, 0, loose))).allowed).toBe(true);
      const byRole = await limiter.reserve(input(role, 0, loose));
      expect(byRole.refusal).toMatchObject({ limit: "requestsPerMinute", scope: "subject", value: 5 });
      expect((await limiter.reserve({ ...input(role), subject: `${subject}-other` })).allowed).toBe(true);
      expect((await limiter.reserve({ ...input(role), model: "other-model" })).allowed).toBe(true);
    });

    it("keeps counting in the day window after the minute window has passed", async () => {
      const l = { requestsPerMinute: 2, requestsPerDay: 3 };
      expect((await limiter.reserve(input(l))).allowed).toBe(true);
      expect((await limiter.reserve(input(l))).allowed).toBe(true);
      expect((await limiter.reserve(input(l))).refusal?.limit).toBe("requestsPerMinute");
      await sleep(720);
      const third = await limiter.reserve(input(l));
      expect(third.requests).toMatchObject({ limit: 3, remaining: 0 });
      const refused = await limiter.reserve(input(l));
      expect(refused.refusal?.limit).toBe("requestsPerDay");
      expect(refused.retryAfterMs).toBeGreaterThan(400);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(2_500);
      await sleep((refused.retryAfterMs ?? 0) + 30);
      expect((await limiter.reserve(input(l))).allowed).toBe(true);
    });

    it("admits exactly the limit out of 500 concurrent requests, and 200 concurrent token reservations", async () => {
      const rpm = { requestsPerMinute: 100 };
      const results = await Promise.all(Array.from({ length: 500 }, () => limiter.reserve(input(rpm))));
      expect(results.filter((d) => d.allowed)).toHaveLength(100);
      const remaining = results.filter((d) => d.allowed).map((d) => d.requests?.remaining);
      expect(new Set(remaining).size).toBe(100);
      const tpm = { tokensPerMinute: 100 };
      const tokens = await Promise.all(
        Array.from({ length: 200 }, (_, i) => limiter.reserve(input(tpm, 7, { id: `k${i % 20}`, limits: {} }))),
      );
      const admitted = tokens.filter((d) => d.allowed);
      expect(admitted).toHaveLength(14);
      await Promise.all(admitted.map((d) => limiter.settle(d.reservation, 0)));
      expect((await limiter.reserve(input(tpm, 100))).allowed).toBe(true);
    });

    it("never admits more than the limit within any window's length", async () => {
      const rpm = { requestsPerMinute: 5 };
      const admitted: number[] = [];
      const until = Date.now() + 1_500;
      while (Date.now() < until) {
        const d = await limiter.reserve(input(rpm));
        if (d.allowed) admitted.push(Date.now());
        await sleep(7);
      }
      expect(admitted.length).toBeGreaterThanOrEqual(10);
      // A little under 600 ms: the store's clock and this one read the same instant a few ms apart.
      for (const t of admitted) expect(admitted.filter((u) => u >= t && u < t + 580).length).toBeLessThanOrEqual(5);
    });

    it("status reads where each limit stands, per limit and per scope, without counting anything", async () => {
      expect(await limiter.status(input({}))).toEqual({
        known: true,
        requests: null,
        tokens: null,
        perLimit: { requestsPerMinute: null, requestsPerDay: null, tokensPerMinute: null, tokensPerDay: null },
      });
      const l = { requestsPerMinute: 5, requestsPerDay: 10, tokensPerMinute: 100 };
      const fresh = await limiter.status(input(l));
      expect(fresh.perLimit).toEqual({
        requestsPerMinute: { limit: 5, remaining: 5, resetMs: 0, scope: "subject" },
        requestsPerDay: { limit: 10, remaining: 10, resetMs: 0, scope: "subject" },
        tokensPerMinute: { limit: 100, remaining: 100, resetMs: 0, scope: "subject" },
        tokensPerDay: null,
      });
      const a = await limiter.reserve(input(l, 30));
      await limiter.reserve(input(l, 30));
      await limiter.settle(a.reservation, 10);
      const s = await limiter.status(input(l));
      expect(s).toMatchObject({
        known: true,
        requests: { limit: 5, remaining: 3 },
        tokens: { limit: 100, remaining: 60 },
        perLimit: {
          requestsPerMinute: { limit: 5, remaining: 3, scope: "subject" },
          requestsPerDay: { limit: 10, remaining: 8, scope: "subject" },
          tokensPerMinute: { limit: 100, remaining: 60, scope: "subject" },
          tokensPerDay: null,
        },
      });
      expect(s.perLimit.requestsPerMinute?.resetMs).toBeGreaterThan(450);
      expect(s.perLimit.requestsPerMinute?.resetMs).toBeLessThanOrEqual(700);
      expect(s.perLimit.requestsPerDay?.resetMs).toBeGreaterThan(1_400);
      expect(s.perLimit.requestsPerDay?.resetMs).toBeLessThanOrEqual(2_500);
      // Reading counts nothing: the same answer again, and the next decision sees only the two reservations.
      expect((await limiter.status(input(l))).perLimit.requestsPerMinute?.remaining).toBe(3);
      expect((await limiter.reserve(input(l, 10))).requests).toMatchObject({ limit: 5, remaining: 2 });
      // Other subjects and models are apart.
      expect((await limiter.status({ ...input(l), model: "other" })).requests).toMatchObject({ remaining: 5 });
      // Once the minute has passed, the minute is whole again and the day still counts.
      await sleep(720);
      const later = await limiter.status(input(l));
      expect(later.perLimit.requestsPerMinute).toEqual({ limit: 5, remaining: 5, resetMs: 0, scope: "subject" });
      expect(later.perLimit.tokensPerMinute).toEqual({ limit: 100, remaining: 100, resetMs: 0, scope: "subject" });
      expect(later.perLimit.requestsPerDay).toMatchObject({ limit: 10, remaining: 7 });
      expect(later.requests).toMatchObject({ limit: 5, remaining: 5 });
    });

    it("status shows the tighter of the role's and the key's limits, and a zero limit as exhausted", async () => {
      const role = { requestsPerMinute: 5, tokensPerMinute: 1_000 };
      const key = { id: "key-s", limits: { requestsPerMinute: 2, requestsPerDay: 0 } };
      const keyAllowsDay = { id: "key-s", limits: { requestsPerMinute: 2 } };
      await limiter.reserve(input(role, 100, keyAllowsDay));
      await limiter.reserve(input(role, 100)); // another key of the same user: counted for the role only
      await limiter.reserve(input(role, 100));
      const s = await limiter.status(input(role, 0, key));
      expect(s.perLimit).toMatchObject({
        requestsPerMinute: { limit: 2, remaining: 1, scope: "key" }, // key: 1 of 2 used; role: 3 of 5
        requestsPerDay: { limit: 0, remaining: 0, resetMs: 0, scope: "key" },
        tokensPerMinute: { limit: 1_000, remaining: 700, scope: "subject" },
        tokensPerDay: null,
      });
      expect(s.requests).toMatchObject({ limit: 0, remaining: 0 });
      await limiter.reserve(input(role, 0));
      await limiter.reserve(input(role, 0));
      const roleBinds = await limiter.status(input(role, 0, keyAllowsDay));
      expect(roleBinds.perLimit.requestsPerMinute).toMatchObject({ limit: 5, remaining: 0, scope: "subject" });
      const other = await limiter.status(input(role, 0, { id: "key-t", limits: { requestsPerMinute: 2 } }));
      expect(other.perLimit.requestsPerMinute).toMatchObject({ limit: 5, remaining: 0, scope: "subject" });
      expect((await limiter.status(input({ tokensPerDay: 0 }))).tokens).toEqual({ limit: 0, remaining: 0, resetMs: 0 });
    });

    it("rejects invalid input and operations after close", async () => {
      await expect(limiter.reserve(input({ requestsPerMinute: 1.5 }))).rejects.toThrow(RangeError);
      await expect(limiter.reserve(input({}, -1))).rejects.toThrow(RangeError);
      await expect(limiter.status(input({ tokensPerDay: -1 }))).rejects.toThrow(RangeError);
      await expect(limiter.status({ ...input({}), subject: "" })).rejects.toThrow(RangeError);
      const d = await limiter.reserve(input({ tokensPerMinute: 10 }, 1));
      await expect(limiter.settle(d.reservation, -1)).rejects.toThrow(RangeError);
      const other = await make(SHORT_WINDOWS);
      await other.close();
      await other.close();
      await expect(other.reserve(input({ requestsPerMinute: 1 }))).rejects.toThrow(/closed/);
      await expect(other.status(input({ requestsPerMinute: 1 }))).rejects.toThrow(/closed/);
    });
  });
}
