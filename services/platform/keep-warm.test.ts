import { afterEach, describe, expect, it, vi } from "vitest";
import { keepWarm } from "./keep-warm.js";

/** A cache's remaining TTLs, set by hand, and the reloads asked for. */
function fakeCache(ttlMs: number) {
  const remaining = new Map<string, number>();
  const reloads: string[] = [];
  return {
    remaining,
    reloads,
    remainingMs: (key: string) => remaining.get(key) ?? 0,
    reload: async (key: string) => {
      reloads.push(key);
      remaining.set(key, ttlMs);
    },
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("keepWarm", () => {
  it("reloads a key in use once half its TTL or less is left, and only then", async () => {
    const c = fakeCache(30_000);
    const w = keepWarm({ ttlMs: 30_000, keepMs: 600_000, max: 10, ...c });
    c.remaining.set("a", 20_000);
    c.remaining.set("b", 15_000);
    c.remaining.set("c", 1);
    w.used("a");
    w.used("b");
    w.used("c");
    await w.pass();
    expect(c.reloads.sort()).toEqual(["b", "c"]);
    // Gone from the cache (an invalidation cleared it) but still in use: loaded again.
    c.remaining.delete("a");
    c.reloads.length = 0;
    await w.pass();
    expect(c.reloads).toEqual(["a"]);
    w.close();
  });

  it("leaves a key unused for longer than keepMs to expire, and tracks it again when it is used", async () => {
    const c = fakeCache(30_000); // passes every 10 s: keepMs 20 s is two passes
    const w = keepWarm({ ttlMs: 30_000, keepMs: 20_000, max: 10, ...c });
    w.used("a");
    for (let i = 0; i < 2; i++) {
      c.remaining.set("a", 0);
      await w.pass();
    }
    expect(c.reloads).toEqual(["a", "a"]);
    c.remaining.set("a", 0);
    await w.pass();
    expect(c.reloads).toHaveLength(2);
    expect(w.size()).toBe(0);
    w.used("a");
    await w.pass();
    expect(c.reloads).toHaveLength(3);
    w.close();
  });

  it("keeps at most `max` keys, reloads at most `concurrency` at once, and goes on past a failed reload", async () => {
    let running = 0;
    let most = 0;
    const done: string[] = [];
    const errors: unknown[] = [];
    const w = keepWarm<string>({
      ttlMs: 30_000,
      keepMs: 600_000,
      max: 5,
      concurrency: 2,
      remainingMs: () => 0,
      reload: async (key) => {
        running++;
        most = Math.max(most, running);
        await new Promise((r) => setTimeout(r, 5));
        running--;
        if (key === "k1") throw new Error("database unreachable");
        done.push(key);
      },
      onError: (err) => errors.push(err),
    });
    for (let i = 0; i < 8; i++) w.used(`k${i}`);
    expect(w.size()).toBe(5);
    await w.pass();
    expect(done.sort()).toEqual(["k0", "k2", "k3", "k4"]);
    expect(errors).toHaveLength(1);
    expect(most).toBe(2);
    w.close();
  });

  it("runs a pass every third of the TTL, one at a time; keepMs 0 keeps nothing", async () => {
    vi.useFakeTimers();
    let reloads = 0;
    let release: () => void = () => undefined;
    const w = keepWarm<string>({
      ttlMs: 30_000,
      keepMs: 600_000,
      max: 10,
      remainingMs: () => 0,
      reload: () => {
        reloads++;
        return new Promise<void>((r) => {
          release = r;
        });
      },
    });
    w.used("a");
    await vi.advanceTimersByTimeAsync(9_999);
    expect(reloads).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(reloads).toBe(1);
    // The first pass still waits on its reload: the next one is skipped, not stacked.
    await vi.advanceTimersByTimeAsync(10_000);
    expect(reloads).toBe(1);
    release();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(reloads).toBe(2);
    release();
    w.close();

    const off = keepWarm<string>({ ttlMs: 30_000, keepMs: 0, max: 10, remainingMs: () => 0, reload: async () => {} });
    off.used("a");
    expect(off.size()).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    off.close();
  });
});
