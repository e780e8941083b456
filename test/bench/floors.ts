import path from "node:path";
import { startNodeFlags } from "./build.js";
import type { PasserelleInfo } from "./child.js";
import { type ChildHandle, startChild } from "./children.js";
import { fx, processCpuMs, QUICK, signed, sleep, summarize, times } from "./common.js";
import type { FloorMode } from "./floors-server.js";
import type { Section } from "./inference.js";
import { answerText, closedLoop, makeTarget, type Target } from "./load.js";

/**
 * Architecture floors: where Passerelle's added latency lies. Five paths to one simulator, interleaved in one run:
 * direct; the ceiling (the bare undici proxy); the Fastify floor and the Connect floor (floors-server.ts: the shape
 * the project requires, Fastify, then the bridge's protobuf mapping, an in-process Connect call and our upstream
 * client, without any of Passerelle's features); and Passerelle (auth, limits, usage records, metrics, logs, CORS).
 * What lies between the Connect floor and Passerelle is what the features cost; what lies below it, the shape.
 * c=1 latency and CPU per request, c=32 throughput and CPU per request. BENCH_FLOORS=0 skips the section.
 */

const KEY = "sk-upstream-floors-0123456789abcdef";
const PUBLIC_MODEL = "bench-chat";
const UPSTREAM_MODEL = "sim-chat";
const PATHS = ["direct", "ceiling", "fastify floor", "connect floor", "passerelle"] as const;
type PathName = (typeof PATHS)[number];
const PLAN = QUICK
  ? { warmupMs: 1_000, c1Warmup: 300, c1Rounds: 4, c1PerRound: 100, c32Rounds: 1, c32RoundMs: 1_500 }
  : { warmupMs: 3_000, c1Warmup: 2_000, c1Rounds: 12, c1PerRound: 400, c32Rounds: 3, c32RoundMs: 2_500 };

/** `script`: the compiled child.js the inference section ran (undefined: from source through tsx). */
export async function runFloorsBench(script: string | undefined): Promise<{ section: Section; figures: unknown }> {
  const nodeFlags = await startNodeFlags(path.resolve(import.meta.dirname, "../.."));
  const children: ChildHandle<unknown>[] = [];
  try {
    const sim = await startChild<{ url: string }>(
      "simulator",
      { apiKey: KEY, completionTokens: 64, ttftMs: 0, interTokenMs: 0, maxNumSeqs: 4096 },
      { script },
    );
    children.push(sim);
    const ceiling = await startChild<{ url: string }>("ceiling", { upstreamUrl: sim.info.url }, { script });
    children.push(ceiling);
    // The floors run with npm start's Node flags, as Passerelle does: the difference is the code, not V8's settings.
    const floor = async (mode: FloorMode) => {
      const c = await startChild<{ url: string }>(
        "floor",
        { mode, upstreamUrl: sim.info.url, upstreamKey: KEY, upstreamModel: UPSTREAM_MODEL },
        { script, nodeFlags },
      );
      children.push(c);
      return c;
    };
    const fastifyFloor = await floor("fastify");
    const connectFloor = await floor("connect");
    const passerelle = await startChild<PasserelleInfo>(
      "passerelle",
      {
        upstreamUrl: sim.info.url,
        upstreamKey: KEY,
        model: PUBLIC_MODEL,
        upstreamModel: UPSTREAM_MODEL,
        redis: Boolean(process.env.PASSERELLE_TEST_REDIS_URL),
      },
      { script, nodeFlags, env: { PASSERELLE_TEST_LOG: process.env.BENCH_LOG_LEVEL ?? "info" } },
    );
    children.push(passerelle);
    await sleep(500);

    const targets: Record<PathName, Target> = {
      direct: makeTarget("direct", sim.info.url, KEY, UPSTREAM_MODEL),
      ceiling: makeTarget("ceiling", ceiling.info.url, KEY, UPSTREAM_MODEL),
      "fastify floor": makeTarget("ceiling", fastifyFloor.info.url, KEY, PUBLIC_MODEL),
      "connect floor": makeTarget("ceiling", connectFloor.info.url, KEY, PUBLIC_MODEL),
      passerelle: makeTarget("passerelle", passerelle.info.httpUrl, passerelle.info.adminKey, PUBLIC_MODEL),
    };
    const pids: Record<PathName, number> = {
      direct: sim.pid,
      ceiling: ceiling.pid,
      "fastify floor": fastifyFloor.pid,
      "connect floor": connectFloor.pid,
      passerelle: passerelle.pid,
    };

    // Sanity: every path gives the direct path's answer (the same work is compared).
    const texts = new Set<string>();
    for (const name of PATHS) texts.add(await answerText(targets[name]));
    if (texts.size !== 1) throw new Error("the floors do not give the direct path's answer");

    for (const name of PATHS) await closedLoop(targets[name], { connections: 32, durationMs: PLAN.warmupMs });
    for (const name of PATHS) await closedLoop(targets[name], { connections: 1, requests: PLAN.c1Warmup });

    // Rotated each round, as the inference section does, so that no path always follows the same one.
    const order = (r: number) => [...PATHS.slice(r % PATHS.length), ...PATHS.slice(0, r % PATHS.length)];
    const latencies = new Map<PathName, number[]>(PATHS.map((n) => [n, []]));
    const c1Cpu = new Map<PathName, number>(PATHS.map((n) => [n, 0]));
    let errors = 0;
    for (let r = 0; r < PLAN.c1Rounds; r++) {
      for (const name of order(r)) {
        const cpu0 = processCpuMs(pids[name]);
        const run = await closedLoop(targets[name], { connections: 1, requests: PLAN.c1PerRound });
        c1Cpu.set(name, (c1Cpu.get(name) as number) + processCpuMs(pids[name]) - cpu0);
        latencies.get(name)?.push(...run.latencies);
        errors += run.errors;
      }
    }
    const c32 = new Map<PathName, { requests: number; cpuMs: number }>(
      PATHS.map((n) => [n, { requests: 0, cpuMs: 0 }]),
    );
    for (let r = 0; r < PLAN.c32Rounds; r++) {
      for (const name of order(r)) {
        const cpu0 = processCpuMs(pids[name]);
        const run = await closedLoop(targets[name], { connections: 32, durationMs: PLAN.c32RoundMs });
        const acc = c32.get(name) as { requests: number; cpuMs: number };
        acc.requests += run.latencies.length;
        acc.cpuMs += processCpuMs(pids[name]) - cpu0;
        errors += run.errors;
      }
    }

    const c1 = new Map(PATHS.map((n) => [n, summarize(latencies.get(n) as number[])]));
    const d = c1.get("direct") as ReturnType<typeof summarize>;
    const seconds = (PLAN.c32Rounds * PLAN.c32RoundMs) / 1000;
    const rps = (n: PathName) => (c32.get(n)?.requests ?? 0) / seconds;
    const figures = Object.fromEntries(
      PATHS.map((n) => {
        const s = c1.get(n) as ReturnType<typeof summarize>;
        const w = c32.get(n) as { requests: number; cpuMs: number };
        return [
          n,
          {
            c1: s,
            c1CpuMsPerRequest: (c1Cpu.get(n) as number) / s.n,
            c32Rps: rps(n),
            c32CpuMsPerRequest: w.cpuMs / w.requests,
          },
        ];
      }),
    );
    const rows = PATHS.map((n) => {
      const s = c1.get(n) as ReturnType<typeof summarize>;
      const f = figures[n] as { c1CpuMsPerRequest: number; c32CpuMsPerRequest: number };
      const direct = n === "direct";
      return {
        path: n,
        "c=1 p50 ms": fx(s.p50, 3),
        "c=1 p99 ms": fx(s.p99, 3),
        "added p50 ms": direct ? "—" : signed(s.p50 - d.p50, 3),
        "added p99 ms": direct ? "—" : signed(s.p99 - d.p99, 3),
        "c=1 CPU ms/req": fx(f.c1CpuMsPerRequest, 3),
        "c=32 req/s": Math.round(rps(n)),
        "vs direct": times(rps(n), rps("direct")),
        "c=32 CPU ms/req": fx(f.c32CpuMsPerRequest, 3),
      };
    });
    return {
      section: {
        title: "Architecture floors: what the required shape costs, and what Passerelle's features add",
        note:
          "fastify floor: Fastify + an undici pool, JSON parsed and re-serialised. connect floor: the fastify floor, " +
          "then the bridge's protobuf mapping, an in-process Connect call and our upstream client, no features. " +
          `${PLAN.c1Rounds} interleaved rounds × ${PLAN.c1PerRound} requests per path at c=1, ${PLAN.c32Rounds} × ` +
          `${PLAN.c32RoundMs / 1000} s at c=32. CPU: /proc utime+stime of each path's server process. ` +
          `Errors: ${errors}.`,
        rows,
      },
      figures: { plan: PLAN, errors, paths: figures },
    };
  } finally {
    for (const c of children.reverse()) await c.stop().catch(() => {});
  }
}
