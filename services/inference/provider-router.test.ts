import { describe, expect, it } from "vitest";
import { createProviderRouter, ERROR_RATIO_RULE, type ProviderRoute, type RouterOptions } from "./provider-router.js";

const provider = (maxConcurrency = 0): ProviderRoute => ({
  id: "p1",
  baseUrl: "http://x",
  upstreamModel: "m",
  timeoutSeconds: 10,
  weight: 1,
  maxConcurrency,
});

// A consecutive-failure threshold no test reaches, so that only the error-ratio rule can eject.
const router = (extra: Partial<RouterOptions> = {}) =>
  createProviderRouter({
    queueTimeoutMs: 0,
    ejectAfterFailures: 1000,
    cooldownMs: 60_000,
    probe: async () => true,
    ...extra,
  });

type Router = ReturnType<typeof router>;

/** Serves `n` requests, the i-th failing when `fails(i)`; stops early once the provider is ejected. */
async function serve(r: Router, p: ProviderRoute, n: number, fails: (i: number) => boolean) {
  for (let i = 0; i < n && r.snapshotOf([p])[0]?.healthy; i++) {
    (await r.acquire([p], new Set())).release(fails(i) ? "failure" : "ok");
  }
}
const healthy = (r: Router, p: ProviderRoute) => r.snapshotOf([p])[0]?.healthy;

describe("provider router: ejection on a high error ratio", () => {
  it("ejects a provider failing every other request", async () => {
    const r = router();
    const p = provider();
    await serve(r, p, 100, (i) => i % 2 === 0);
    expect(healthy(r, p)).toBe(false);
  });

  it("follows the configured threshold, and never ejects by ratio at 100 %", async () => {
    const strict = router({ ejectErrorPercent: 10 });
    const p = provider();
    await serve(strict, p, 100, (i) => i % 5 === 0); // 20 % failures
    expect(healthy(strict, p)).toBe(false);
    const off = router({ ejectErrorPercent: 100 });
    const q = provider();
    await serve(off, q, 200, () => true);
    expect(healthy(off, q)).toBe(true);
  });

  it("keeps a provider failing one request in ten", async () => {
    const r = router();
    const p = provider();
    await serve(r, p, 500, (i) => i % 10 === 0);
    expect(healthy(r, p)).toBe(true);
  });

  it("does not judge below the minimum number of samples, and ignores neutral outcomes", async () => {
    const r = router();
    const p = provider();
    await serve(r, p, ERROR_RATIO_RULE.minSamples - 1, (i) => i % 2 === 0);
    // Client-side outcomes (cancelled, invalid request) say nothing about the provider.
    for (let i = 0; i < 50; i++) (await r.acquire([p], new Set())).release("neutral");
    expect(healthy(r, p)).toBe(true);
    // The next counted outcome reaches the minimum: 11 failures of 20 is above the ratio.
    (await r.acquire([p], new Set())).release("failure");
    expect(healthy(r, p)).toBe(false);
  });

  it("re-admits a provider (cool-down, then /health) with a clean window", async () => {
    let t = 0;
    const r = router({ now: () => t });
    const p = provider();
    await serve(r, p, 100, (i) => i % 2 === 0);
    expect(healthy(r, p)).toBe(false);
    t += 60_000;
    // The first acquire after the cool-down starts the probe; it re-admits once resolved.
    await expect(r.acquire([p], new Set())).rejects.toThrow(/No healthy upstream/);
    await new Promise((resolve) => setImmediate(resolve));
    expect(healthy(r, p)).toBe(true);
    // A stale window would eject on the first failure; a clean one needs the minimum number of samples again.
    await serve(r, p, ERROR_RATIO_RULE.minSamples - 1, () => true);
    expect(healthy(r, p)).toBe(true);
  });
});

describe("provider router: max_concurrency split between workers", () => {
  async function admittedAtOnce(workers: number) {
    const r = router({ workers });
    const p = provider(10);
    let admitted = 0;
    for (;;) {
      try {
        await r.acquire([p], new Set());
        admitted++;
      } catch {
        return admitted;
      }
    }
  }

  it("admits ceil(10 / 4) = 3 at once in each of 4 workers: the 4th waits for a free slot", async () => {
    expect(await admittedAtOnce(4)).toBe(3);
    const r = router({ workers: 4, queueTimeoutMs: 5_000 });
    const p = provider(10);
    const leases = await Promise.all([1, 2, 3].map(() => r.acquire([p], new Set())));
    let fourth = false;
    const waiting = r.acquire([p], new Set()).then((l) => {
      fourth = true;
      return l;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(fourth).toBe(false);
    expect(r.snapshotOf([p])[0]?.waiting).toBe(1);
    leases[0]?.release("ok");
    await waiting;
    expect(fourth).toBe(true);
  });

  it("admits all 10 in a single process", async () => {
    expect(await admittedAtOnce(1)).toBe(10);
  });

  it("keeps 0 unlimited", async () => {
    const r = router({ workers: 4 });
    const p = provider(0);
    for (let i = 0; i < 100; i++) await r.acquire([p], new Set());
    expect(r.snapshotOf([p])[0]?.inFlight).toBe(100);
  });
});
