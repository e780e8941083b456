// The admins' view of provider states (ListProviderStates, GET /v1/admin/provider-states): which providers it lists,
// and how it counts the requests waiting for a free slot.
import { describe, expect, it } from "vitest";
import { InferenceService } from "../../gen/passerelle/inference/v1/inference_service_pb.js";
import { QUICK_INFERENCE_SETTINGS } from "../../test/support/inference-settings.js";
import { clientAs } from "../../test/support/principal.js";
import type { Governor } from "../governance/index.js";
import { setupInference } from "./index.js";
import { createInferenceService } from "./inference-service.js";
import { createProviderRouter, type ProviderRoute } from "./provider-router.js";
import { createUpstreamClient } from "./upstream-client.js";

const route = (id: string, maxConcurrency = 0): ProviderRoute => ({
  id,
  baseUrl: `http://${id}.invalid`,
  upstreamModel: "up",
  timeoutSeconds: 10,
  weight: 1,
  maxConcurrency,
});

const router = () =>
  createProviderRouter({ queueTimeoutMs: 30_000, ejectAfterFailures: 3, cooldownMs: 60_000, probe: async () => true });

/** ListProviderStates over the router transport, as an admin, with the registry listing `registry()`. */
function setup(registry: () => string[]) {
  const r = router();
  const service = createInferenceService({
    models: {
      resolve: () => Promise.reject(new Error("unused")),
      providerIds: async () => registry(),
    },
    upstream: createUpstreamClient(),
    router: r,
    governor: {} as Governor,
    defaultMaxTokens: 16,
    maxAttempts: 1,
    firstTokenTimeoutMs: 1000,
    idleTimeoutMs: 1000,
    connectTimeoutMs: 1000,
  });
  const client = clientAs(InferenceService, service);
  const list = async () =>
    (await client.listProviderStates({})).states.map((s) => ({
      id: s.providerId,
      inFlight: s.inFlight,
      waiting: s.waiting,
      healthy: s.healthy,
    }));
  return { router: r, list };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("ListProviderStates", () => {
  it("lists every provider of the registry before any traffic, healthy and idle", async () => {
    const t = setup(() => ["a", "b"]);
    expect(await t.list()).toEqual([
      { id: "a", inFlight: 0, waiting: 0, healthy: true },
      { id: "b", inFlight: 0, waiting: 0, healthy: true },
    ]);
  });

  it("drops a provider deleted from the registry, and shows the live state of the others", async () => {
    let registry = ["a", "b", "c"];
    const t = setup(() => registry);
    const [a, c] = [route("a"), route("c")];
    (await t.router.acquire([c], new Set())).release("ok");
    const held = await t.router.acquire([a], new Set());
    registry = ["a", "b"];
    expect(await t.list()).toEqual([
      { id: "a", inFlight: 1, waiting: 0, healthy: true },
      { id: "b", inFlight: 0, waiting: 0, healthy: true },
    ]);
    expect(t.router.snapshot().map((s) => s.id)).not.toContain("c");
    held.release("ok");
  });

  it("is wired by setupInference from the registry's provider listing", async () => {
    const inf = setupInference({
      // biome-ignore lint/suspicious/noExplicitAny: only the listing is used
      registry: { providerIds: async () => ["p1", "p2"] } as any,
      governor: {} as Governor,
      defaultMaxTokens: 16,
      settings: QUICK_INFERENCE_SETTINGS,
    });
    try {
      expect(await inf.models.providerIds?.()).toEqual(["p1", "p2"]);
      expect((await inf.providerStates()).map((s) => s.id)).toEqual(["p1", "p2"]);
    } finally {
      await inf.close();
    }
  });

  it("gives the /metrics gauges what the router knows when the registry cannot be read", async () => {
    let down = false;
    const inf = setupInference({
      // biome-ignore lint/suspicious/noExplicitAny: only the listing is used
      registry: { providerIds: async () => (down ? Promise.reject(new Error("database down")) : ["p1"]) } as any,
      governor: {} as Governor,
      defaultMaxTokens: 16,
      settings: QUICK_INFERENCE_SETTINGS,
    });
    try {
      const held = await inf.router.acquire([route("p1", 0)], new Set());
      down = true;
      expect(await inf.providerStates()).toEqual([expect.objectContaining({ id: "p1", inFlight: 1, healthy: true })]);
      held.release("ok");
    } finally {
      await inf.close();
    }
  });
});

describe("provider router: requests waiting for a free slot", () => {
  it("counts a waiting request once over its model's providers, on the one it is queued against", async () => {
    const r = router();
    const [a, b] = [route("a", 1), route("b", 1)];
    const held = [await r.acquire([a, b], new Set()), await r.acquire([a, b], new Set())];
    const ac = new AbortController();
    const waiting = r.acquire([a, b], new Set(), ac.signal).catch((e: unknown) => e);
    await settle();
    const states = r.snapshotOf([a, b]);
    expect(states.reduce((n, s) => n + s.waiting, 0)).toBe(1);
    ac.abort();
    await waiting;
    expect(r.snapshotOf([a, b]).map((s) => s.waiting)).toEqual([0, 0]);
    for (const l of held) l.release("ok");
  });
});
