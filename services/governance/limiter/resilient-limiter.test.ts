import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createLimiterRedisClient,
  createMemoryLimiter,
  createRedisLimiter,
  createResilientLimiter,
  type Decision,
  type DecisionOutcome,
  type OutagePolicy,
  type RateLimiter,
  type ReserveInput,
} from "./index.js";
import { limits, SHORT_WINDOWS } from "./limiter.contract.js";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const input = (l: ReserveInput["limits"], tokens = 0): ReserveInput => ({
  subject: "u",
  model: "m",
  limits: l,
  tokens,
});
const rpm2 = limits({ requestsPerMinute: 2 });
const UNKNOWN = {
  known: false,
  requests: null,
  tokens: null,
  perLimit: { requestsPerMinute: null, requestsPerDay: null, tokensPerMinute: null, tokensPerDay: null },
};

/** A Redis limiter whose client points at a closed port: every command fails at once. */
function deadRedisLimiter(): { limiter: RateLimiter; client: Redis } {
  const client = new Redis("redis://127.0.0.1:1", {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
  });
  client.on("error", () => undefined);
  return { limiter: createRedisLimiter({ redis: client, windows: SHORT_WINDOWS }), client };
}

function resilientOverDeadRedis(policy: OutagePolicy, outcomes: DecisionOutcome[], errors: unknown[] = []) {
  const { limiter, client } = deadRedisLimiter();
  const resilient = createResilientLimiter({
    primary: limiter,
    policy,
    windows: SHORT_WINDOWS,
    onDecision: (o) => outcomes.push(o),
    onError: (err) => errors.push(err),
  });
  return { resilient, close: () => resilient.close().then(() => client.disconnect()) };
}

describe("resilient limiter with Redis unreachable", () => {
  it("fail-open admits without counting; forbidden stays refused", async () => {
    const outcomes: DecisionOutcome[] = [];
    const errors: unknown[] = [];
    const { resilient, close } = resilientOverDeadRedis("fail-open", outcomes, errors);
    for (let i = 0; i < 3; i++) {
      const d = await resilient.reserve(input(rpm2));
      expect(d).toEqual({ allowed: true, outcome: "degraded_open", reservation: null, requests: null, tokens: null });
    }
    expect((await resilient.reserve(input(limits({ requestsPerDay: 0 })))).refusal?.reason).toBe("forbidden");
    expect(outcomes).toEqual(["degraded_open", "degraded_open", "degraded_open", "refused"]);
    expect(errors).toHaveLength(1); // then the primary is left alone for retryIntervalMs
    await close();
  });

  it("status answers unknown whatever the policy, and validates its input first", async () => {
    for (const policy of ["fail-open", "fail-closed", "local"] as const) {
      const errors: unknown[] = [];
      const { resilient, close } = resilientOverDeadRedis(policy, [], errors);
      expect(await resilient.status({ subject: "u", model: "m", limits: rpm2 })).toEqual(UNKNOWN);
      expect(errors).toHaveLength(1);
      // Within retryIntervalMs the primary is not asked again.
      expect(await resilient.status({ subject: "u", model: "m", limits: rpm2 })).toEqual(UNKNOWN);
      expect(errors).toHaveLength(1);
      await expect(resilient.status({ subject: "", model: "m", limits: rpm2 })).rejects.toThrow(RangeError);
      await close();
    }
  });

  it("fail-closed refuses with a Retry-After", async () => {
    const outcomes: DecisionOutcome[] = [];
    const { resilient, close } = resilientOverDeadRedis("fail-closed", outcomes);
    const d = await resilient.reserve(input(rpm2));
    expect(d).toMatchObject({ allowed: false, outcome: "degraded_closed", retryAfterSeconds: 1 });
    expect(d.refusal).toEqual({ reason: "unavailable" });
    expect(outcomes).toEqual(["degraded_closed"]);
    await close();
  });

  it("local enforces the same limits in process, and settles locally", async () => {
    const outcomes: DecisionOutcome[] = [];
    const { resilient, close } = resilientOverDeadRedis("local", outcomes);
    const first = await resilient.reserve(input(rpm2));
    expect(first).toMatchObject({ allowed: true, outcome: "degraded_local" });
    expect(first.reservation?.backend).toBe("memory");
    expect((await resilient.reserve(input(rpm2))).requests).toMatchObject({ limit: 2, remaining: 0 });
    const refused = await resilient.reserve(input(rpm2));
    expect(refused).toMatchObject({ allowed: false, outcome: "degraded_local" });
    expect(refused.refusal?.limit).toBe("requestsPerMinute");
    expect(await resilient.settle(first.reservation, 0)).toBe(true);
    expect(await resilient.settle(first.reservation, 0)).toBe(false);
    expect(outcomes).toEqual(["degraded_local", "degraded_local", "degraded_local"]);
    await close();
  });
});

describe("resilient limiter timing", () => {
  /** A primary whose reserve answers after `delayMs` with an admission, counting calls and settles. */
  function slowPrimary(delayMs: number, fail = false) {
    const calls = { reserve: 0, status: 0, settle: [] as number[] };
    const admission: Decision = {
      allowed: true,
      outcome: "allowed",
      reservation: { id: "r", backend: "redis", marker: "x", tokens: 7, counters: [] },
      requests: null,
      tokens: null,
    };
    const primary: RateLimiter = {
      kind: "redis",
      async reserve() {
        calls.reserve++;
        await sleep(delayMs);
        if (fail) throw new Error("down");
        return admission;
      },
      async settle(_reservation, tokens) {
        calls.settle.push(tokens);
        return true;
      },
      async status() {
        calls.status++;
        await sleep(delayMs);
        if (fail) throw new Error("down");
        return { known: true, requests: null, tokens: null, perLimit: UNKNOWN.perLimit };
      },
      async close() {},
    };
    return { primary, calls };
  }

  it("gives up after timeoutMs and settles a late reservation back with 0 tokens", async () => {
    const { primary, calls } = slowPrimary(150);
    const limiter = createResilientLimiter({ primary, policy: "fail-open", timeoutMs: 20 });
    const started = Date.now();
    expect((await limiter.reserve(input(rpm2))).outcome).toBe("degraded_open");
    expect(Date.now() - started).toBeLessThan(120);
    await sleep(200);
    expect(calls.settle).toEqual([0]);
    await limiter.close();
  });

  it("status gives up after timeoutMs, and a failed status spares the next decision its timeout", async () => {
    const { primary, calls } = slowPrimary(150);
    const limiter = createResilientLimiter({ primary, policy: "fail-open", timeoutMs: 20 });
    const started = Date.now();
    expect(await limiter.status({ subject: "u", model: "m", limits: rpm2 })).toEqual(UNKNOWN);
    expect(Date.now() - started).toBeLessThan(120);
    expect((await limiter.reserve(input(rpm2))).outcome).toBe("degraded_open");
    expect(calls).toMatchObject({ status: 1, reserve: 0 });
    await limiter.close();
    const fast = createResilientLimiter({ primary: slowPrimary(0).primary, policy: "fail-open", timeoutMs: 20 });
    expect((await fast.status({ subject: "u", model: "m", limits: rpm2 })).known).toBe(true);
    await fast.close();
  });

  it("skips the primary for retryIntervalMs after a failure, then tries again", async () => {
    let t = 1_000;
    const { primary, calls } = slowPrimary(0, true);
    const limiter = createResilientLimiter({ primary, policy: "fail-closed", retryIntervalMs: 500, now: () => t });
    for (let i = 0; i < 5; i++) expect((await limiter.reserve(input(rpm2))).outcome).toBe("degraded_closed");
    expect(calls.reserve).toBe(1);
    t += 500;
    await limiter.reserve(input(rpm2));
    expect(calls.reserve).toBe(2);
    await limiter.close();
  });

  it("answers false, and reports, a settle with a count that is not one (it runs unawaited)", async () => {
    const { primary, calls } = slowPrimary(0);
    const errors: [unknown, string][] = [];
    const limiter = createResilientLimiter({
      primary,
      policy: "fail-closed",
      onError: (e, op) => errors.push([e, op]),
    });
    const { reservation } = await limiter.reserve(input(limits({ tokensPerMinute: 100 }), 7));
    expect(await limiter.settle(reservation, 30.5)).toBe(false);
    expect(await limiter.settle(reservation, -5)).toBe(false);
    expect(errors.map(([e, op]) => [e instanceof RangeError, op])).toEqual([
      [true, "settle"],
      [true, "settle"],
    ]);
    expect(calls.settle).toEqual([]);
    expect(await limiter.settle(reservation, 30)).toBe(true);
    await limiter.close();
  });

  it("validates its bounds", () => {
    const { primary } = slowPrimary(0);
    expect(() => createResilientLimiter({ primary, policy: "local", timeoutMs: 0 })).toThrow(RangeError);
    expect(() => createResilientLimiter({ primary, policy: "local", local: createMemoryLimiter() })).not.toThrow();
  });
});

const hasRedisServer = spawnSync("redis-server", ["--version"]).status === 0;

describe.skipIf(!hasRedisServer)("resilient limiter over a Redis of its own that pauses, dies and comes back", () => {
  let port = 0;
  let server: ChildProcess | undefined;

  async function startServer(): Promise<void> {
    server = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      {
        stdio: "ignore",
      },
    );
    const probe = new Redis(port, "127.0.0.1", { lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: 0 });
    probe.on("error", () => undefined);
    for (let i = 0; i < 100; i++) {
      if ((await probe.ping().catch(() => null)) === "PONG") break;
      await sleep(50);
    }
    probe.disconnect();
  }

  function stopServer(): void {
    if (server?.pid !== undefined && server.exitCode === null) process.kill(server.pid, "SIGKILL");
    server = undefined;
  }

  beforeAll(async () => {
    port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const address = s.address();
        s.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0));
      });
    });
    await startServer();
  });

  afterAll(() => stopServer());

  it("degrades to local while Redis is paused or down, and recovers", async () => {
    const outcomes: DecisionOutcome[] = [];
    const client = await createLimiterRedisClient(`redis://127.0.0.1:${port}`);
    const primary = createRedisLimiter({ redis: client, windows: SHORT_WINDOWS });
    const limiter = createResilientLimiter({
      primary,
      policy: "local",
      timeoutMs: 50,
      retryIntervalMs: 100,
      windows: SHORT_WINDOWS,
      onDecision: (o) => outcomes.push(o),
    });
    const l = limits({ tokensPerMinute: 1_000 });
    const ok = await limiter.reserve(input(l, 10));
    expect(ok.outcome).toBe("allowed");

    const admin = await createLimiterRedisClient(`redis://127.0.0.1:${port}`);
    await admin.call("CLIENT", "PAUSE", "300", "ALL");
    const started = Date.now();
    expect((await limiter.reserve(input(l, 10))).outcome).toBe("degraded_local");
    expect(Date.now() - started).toBeLessThan(200);
    await sleep(450);
    expect((await limiter.reserve(input(l, 10))).outcome).toBe("allowed");
    admin.disconnect();

    stopServer();
    await sleep(50);
    expect((await limiter.reserve(input(l, 10))).outcome).toBe("degraded_local");
    expect(await limiter.settle(ok.reservation, 0)).toBe(false); // a Redis reservation cannot be settled now

    await startServer();
    const deadline = Date.now() + 10_000;
    let last: DecisionOutcome = "degraded_local";
    while (last !== "allowed" && Date.now() < deadline) {
      await sleep(100);
      last = (await limiter.reserve(input(l, 10))).outcome;
    }
    expect(last).toBe("allowed");
    expect(outcomes.slice(0, 4)).toEqual(["allowed", "degraded_local", "allowed", "degraded_local"]);
    await limiter.close();
    client.disconnect();
  }, 20_000);
});
