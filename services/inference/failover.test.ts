import { afterEach, describe, expect, it, vi } from "vitest";
import { createUpstreamClock, upstreamTiming, withFailover } from "./failover.js";
import { createProviderRouter, type ProviderRoute } from "./provider-router.js";
import { UpstreamError } from "./upstream-client.js";

// The clock reads performance.now(): each test sets it by hand.
let now = 0;
afterEach(() => vi.restoreAllMocks());
const at = (ms: number) => {
  now = ms;
};
const useFakeNow = () => vi.spyOn(performance, "now").mockImplementation(() => now);

const provider = (id: string, maxConcurrency = 0): ProviderRoute => ({
  id,
  baseUrl: `http://${id}`,
  upstreamModel: "m",
  timeoutSeconds: 10,
  weight: 1,
  maxConcurrency,
});
const router = () =>
  createProviderRouter({ queueTimeoutMs: 1000, ejectAfterFailures: 1000, cooldownMs: 60_000, probe: async () => true });
const NEVER = new AbortController().signal;

describe("upstream clock", () => {
  it("adds up intervals one after another, and counts overlapping ones once", () => {
    useFakeNow();
    const c = createUpstreamClock();
    at(10);
    c.start();
    at(30);
    c.stop(); // 20
    at(100);
    c.start(); // a batch
    at(110);
    c.start(); // a second batch, in parallel
    at(140);
    c.stop();
    at(150);
    c.stop(); // 100..150: 50 more
    expect(c.ms).toBe(70);
    expect(upstreamTiming(c)).toBe("upstream;dur=70.00");
  });

  it("reads the time so far while a call is in flight", () => {
    useFakeNow();
    const c = createUpstreamClock();
    at(5);
    c.start();
    at(12.345);
    expect(c.ms).toBeCloseTo(7.345, 6);
    expect(upstreamTiming(c)).toBe("upstream;dur=7.35");
  });
});

describe("withFailover's clock", () => {
  it("times every attempt, a failed one and its retry, but not the waits for a provider's slot", async () => {
    useFakeNow();
    const r = router();
    const one = provider("one", 1);
    const two = provider("two", 1);
    // Both providers busy: the call queues (gateway time), fails on `one`, queues again, then succeeds on `two`.
    at(0);
    const busyOne = await r.acquire([one], new Set(), NEVER);
    const busyTwo = await r.acquire([two], new Set(), NEVER);
    const clock = createUpstreamClock();
    const seen: string[] = [];
    const call = withFailover(
      r,
      [one, two],
      3,
      NEVER,
      async (lease) => {
        seen.push(lease.provider.id);
        if (lease.provider.id === "one") {
          at(now + 30);
          throw new UpstreamError({ kind: "http", status: 503, message: "busy", body: null });
        }
        at(now + 12);
        return "answer";
      },
      { clock },
    );
    at(500);
    busyOne.release("ok");
    await vi.waitFor(() => expect(seen).toEqual(["one"]));
    at(900);
    busyTwo.release("ok");
    await expect(call).resolves.toBe("answer");
    expect(seen).toEqual(["one", "two"]);
    expect(now).toBe(912);
    expect(clock.ms).toBe(42);
  });

  it("stops the clock when an attempt throws something that is not an upstream failure", async () => {
    useFakeNow();
    const clock = createUpstreamClock();
    at(0);
    const call = withFailover(
      router(),
      [provider("one")],
      3,
      NEVER,
      async () => {
        at(8);
        throw new TypeError("a bug");
      },
      { clock },
    );
    await expect(call).rejects.toThrow(TypeError);
    at(1000);
    expect(clock.ms).toBe(8);
  });
});
