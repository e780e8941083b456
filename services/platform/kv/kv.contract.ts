import { randomUUID } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { KvStore } from "./kv.js";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `predicate` until it holds or `timeoutMs` elapses (then fails with `what`). */
export async function waitFor(predicate: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/**
 * The behaviour every KvStore implementation must have. Real time only (no fake timers: Redis keeps its own
 * clock), short TTLs, and a random key/channel prefix per test so that tests never see each other's data.
 */
export function kvContract(name: string, make: () => Promise<KvStore>): void {
  describe(`KvStore contract: ${name}`, () => {
    let kv: KvStore;
    let prefix: string;
    const used = new Set<string>();
    const key = (k: string): string => {
      const full = `${prefix}${k}`;
      used.add(full);
      return full;
    };

    beforeEach(async () => {
      prefix = `kv-contract:${randomUUID()}:`;
      used.clear();
      kv = await make();
    });

    afterEach(async () => {
      if (used.size > 0) await kv.del(...used);
      await kv.close();
    });

    it("reports its kind and answers ping", async () => {
      expect(["redis", "memory"]).toContain(kv.kind);
      await expect(kv.ping()).resolves.toBeUndefined();
    });

    it("gets, sets, overwrites and deletes", async () => {
      const a = key("a");
      const b = key("b");
      expect(await kv.get(a)).toBeNull();
      await kv.set(a, "1");
      expect(await kv.get(a)).toBe("1");
      await kv.set(a, "two");
      expect(await kv.get(a)).toBe("two");
      await kv.set(b, "");
      expect(await kv.get(b)).toBe("");
      expect(await kv.del(a, b, key("missing"))).toBe(2);
      expect(await kv.get(a)).toBeNull();
      expect(await kv.get(b)).toBeNull();
      expect(await kv.del(a)).toBe(0);
      expect(await kv.del()).toBe(0);
    });

    it("expires a value set with a TTL", async () => {
      const k = key("ttl");
      await kv.set(k, "v", 80);
      expect(await kv.get(k)).toBe("v");
      await sleep(160);
      expect(await kv.get(k)).toBeNull();
      expect(await kv.pttl(k)).toBe(-2);
      expect(await kv.del(k)).toBe(0);
    });

    it("follows PTTL semantics: -2 missing, -1 without expiry, remaining ms otherwise", async () => {
      const k = key("pttl");
      expect(await kv.pttl(k)).toBe(-2);
      await kv.set(k, "v");
      expect(await kv.pttl(k)).toBe(-1);
      await kv.set(k, "v", 1_000);
      const left = await kv.pttl(k);
      expect(left).toBeGreaterThan(800);
      expect(left).toBeLessThanOrEqual(1_000);
      // A plain set() clears the expiry, as in Redis.
      await kv.set(k, "w");
      expect(await kv.pttl(k)).toBe(-1);
      await kv.set(k, "x", 0);
      expect(await kv.pttl(k)).toBe(-1);
    });

    it("incrBy creates the key with its TTL and keeps the original TTL on later increments", async () => {
      const k = key("counter");
      expect(await kv.incrBy(k, 3, 300)).toBe(3);
      const first = await kv.pttl(k);
      expect(first).toBeGreaterThan(0);
      expect(first).toBeLessThanOrEqual(300);
      await sleep(60);
      expect(await kv.incrBy(k, 4, 10_000)).toBe(7);
      expect(await kv.incrBy(k, -2, 10_000)).toBe(5);
      const later = await kv.pttl(k);
      expect(later).toBeGreaterThan(0);
      expect(later).toBeLessThanOrEqual(first - 40);
      expect(await kv.get(k)).toBe("5");
      await sleep(first + 60);
      expect(await kv.get(k)).toBeNull();
      expect(await kv.incrBy(k, 1, 10_000)).toBe(1);
      expect(await kv.pttl(k)).toBeGreaterThan(9_000);
    });

    it("incrBy gives an expiry to a key that had none", async () => {
      const k = key("no-ttl");
      await kv.set(k, "10");
      expect(await kv.incrBy(k, 5, 500)).toBe(15);
      const left = await kv.pttl(k);
      expect(left).toBeGreaterThan(0);
      expect(left).toBeLessThanOrEqual(500);
    });

    it("incrBy rejects a non-integer value or invalid arguments without touching the key", async () => {
      const k = key("text");
      await kv.set(k, "hello");
      await expect(kv.incrBy(k, 1, 1_000)).rejects.toThrow();
      expect(await kv.get(k)).toBe("hello");
      await expect(kv.incrBy(key("bad-ttl"), 1, 0)).rejects.toThrow(RangeError);
      await expect(kv.incrBy(key("bad-amount"), 1.5, 1_000)).rejects.toThrow(RangeError);
      expect(await kv.get(key("bad-ttl"))).toBeNull();
    });

    it("100 concurrent incrBy add up exactly", async () => {
      const k = key("concurrent-incr");
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) => kv.incrBy(k, i + 1, 10_000)));
      expect(await kv.get(k)).toBe(String((100 * 101) / 2));
      expect(new Set(results).size).toBe(100);
      expect(Math.max(...results)).toBe(5_050);
      expect(await kv.pttl(k)).toBeGreaterThan(0);
    });

    it("hit counts within the limit, refuses beyond it, and resets after the window", async () => {
      const k = key("window");
      const first = await kv.hit(k, 2, 5, 200);
      expect(first.allowed).toBe(true);
      expect(first.count).toBe(2);
      expect(first.resetMs).toBeGreaterThan(0);
      expect(first.resetMs).toBeLessThanOrEqual(200);
      expect(await kv.hit(k, 3, 5, 200)).toMatchObject({ allowed: true, count: 5 });
      const refused = await kv.hit(k, 1, 5, 200);
      expect(refused).toMatchObject({ allowed: false, count: 5 });
      expect(refused.resetMs).toBeGreaterThan(0);
      expect(refused.resetMs).toBeLessThanOrEqual(first.resetMs);
      expect(await kv.get(k)).toBe("5");
      await sleep(260);
      const next = await kv.hit(k, 1, 5, 200);
      expect(next).toMatchObject({ allowed: true, count: 1 });
      expect(next.resetMs).toBeGreaterThan(100);
    });

    it("hit keeps the window's start: later hits do not extend it", async () => {
      const k = key("fixed");
      const first = await kv.hit(k, 1, 10, 300);
      await sleep(80);
      const second = await kv.hit(k, 1, 10, 300);
      expect(second.count).toBe(2);
      expect(second.resetMs).toBeLessThanOrEqual(first.resetMs - 60);
    });

    it("hit refuses a cost above the limit without changing the count", async () => {
      const fresh = key("fresh");
      expect(await kv.hit(fresh, 10, 5, 1_000)).toMatchObject({ allowed: false, count: 0 });
      expect(await kv.get(fresh)).toBeNull();
      expect(await kv.pttl(fresh)).toBe(-2);

      const k = key("existing");
      expect(await kv.hit(k, 1, 5, 1_000)).toMatchObject({ allowed: true, count: 1 });
      expect(await kv.hit(k, 10, 5, 1_000)).toMatchObject({ allowed: false, count: 1 });
      expect(await kv.get(k)).toBe("1");
    });

    it("200 concurrent hits with limit 50 allow exactly 50", async () => {
      const k = key("concurrent-hit");
      const results = await Promise.all(Array.from({ length: 200 }, () => kv.hit(k, 1, 50, 10_000)));
      const allowed = results.filter((r) => r.allowed);
      expect(allowed).toHaveLength(50);
      expect(allowed.map((r) => r.count).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      for (const r of results.filter((r) => !r.allowed)) expect(r.count).toBe(50);
      expect(await kv.get(k)).toBe("50");
      const left = await kv.pttl(k);
      expect(left).toBeGreaterThan(0);
      expect(left).toBeLessThanOrEqual(10_000);
    });

    it("publishes to every subscriber, in order, and stops after unsubscribe", async () => {
      const channel = key("chan");
      const other = key("other-chan");
      const a: string[] = [];
      const b: string[] = [];
      const elsewhere: string[] = [];
      const unsubA = await kv.subscribe(channel, (m) => a.push(m));
      const unsubB = await kv.subscribe(channel, (m) => b.push(m));
      const unsubOther = await kv.subscribe(other, (m) => elsewhere.push(m));

      await kv.publish(channel, "m1");
      await kv.publish(channel, "m2");
      await kv.publish(channel, "m3");
      await waitFor(() => a.length === 3 && b.length === 3, "both subscribers to get 3 messages");
      expect(a).toEqual(["m1", "m2", "m3"]);
      expect(b).toEqual(["m1", "m2", "m3"]);

      await unsubA();
      await unsubA(); // idempotent
      await kv.publish(channel, "m4");
      await waitFor(() => b.length === 4, "the remaining subscriber to get m4");
      expect(b[3]).toBe("m4");
      expect(a).toHaveLength(3);

      await unsubB();
      await kv.publish(channel, "m5");
      await kv.publish(other, "o1");
      await waitFor(() => elsewhere.length === 1, "the other channel's message");
      expect(elsewhere).toEqual(["o1"]);
      expect(a).toHaveLength(3);
      expect(b).toHaveLength(4);
      await unsubOther();
    });

    it("delivers asynchronously, never inside publish()", async () => {
      const channel = key("async");
      const got: string[] = [];
      const unsub = await kv.subscribe(channel, (m) => got.push(m));
      const published = kv.publish(channel, "x");
      expect(got).toEqual([]);
      await published;
      await waitFor(() => got.length === 1, "the message");
      await unsub();
    });

    it("treats each subscribe() call as its own subscription", async () => {
      const channel = key("same-fn");
      const got: string[] = [];
      const listener = (m: string) => got.push(m);
      const unsub1 = await kv.subscribe(channel, listener);
      const unsub2 = await kv.subscribe(channel, listener);
      await kv.publish(channel, "x");
      await waitFor(() => got.length === 2, "two deliveries");
      await unsub1();
      await kv.publish(channel, "y");
      await waitFor(() => got.length === 3, "one more delivery");
      expect(got).toEqual(["x", "x", "y"]);
      await unsub2();
    });

    it("keeps tests isolated: a fresh prefix sees nothing", async () => {
      const k = key("isolated");
      expect(await kv.get(k)).toBeNull();
      expect(await kv.pttl(k)).toBe(-2);
      expect(await kv.hit(k, 1, 1, 1_000)).toMatchObject({ allowed: true, count: 1 });
    });

    it("rejects operations after close", async () => {
      const other = await make();
      await other.close();
      await other.close(); // idempotent
      await expect(other.get(key("closed"))).rejects.toThrow();
    });
  });
}
