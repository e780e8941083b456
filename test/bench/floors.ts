import path from "node:path";
import { startNodeFlags } from "./build.js";
import type { PasserelleInfo } from "./child.js";
import { type ChildHandle, startChild } from "./children.js";
import { fx, processCpuMs, QUICK, type Summary, signed, sleep, summarize, times } from "./common.js";
import type { FloorMode } from "./floors-server.js";
import type { Section } from "./inference.js";
import { answerText, closedLoop, makeTarget, type StreamRecord, streams, type Target } from "./load.js";
import { addedPair, frameColumns, parseStream, streamOutcome } from "./streams.js";

/**
 * Architecture floors: where Passerelle's added latency lies. Five paths to one simulator, interleaved in one run:
 * direct; the ceiling (the bare undici proxy); the Fastify floor and the Connect floor (floors-server.ts: the shape
 * the project requires, Fastify, then the bridge's protobuf mapping, an in-process Connect call and our upstream
 * client, without any of Passerelle's features); and Passerelle (auth, limits, usage records, metrics, logs, CORS).
 * What lies between the Connect floor and Passerelle is what the features cost; what lies below it, the shape.
 * c=1 latency and CPU per request, c=32 throughput and CPU per request; then streams (64 tokens 5 ms apart) one at a
 * time and 64 at once on every path but the Fastify floor: time to first frame, frame fidelity, CPU per stream.
 * attainable.ts reads these figures against the targets. BENCH_FLOORS=0 skips the section.
 */

const KEY = "sk-upstream-floors-0123456789abcdef";
const PUBLIC_MODEL = "bench-chat";
const UPSTREAM_MODEL = "sim-chat";
const PATHS = ["direct", "ceiling", "fastify floor", "connect floor", "passerelle"] as const;
type PathName = (typeof PATHS)[number];

/** One path's figures in the floors section. */
export interface FloorPath {
  c1: Summary;
  c1CpuMsPerRequest: number;
  c32Rps: number;
  c32CpuMsPerRequest: number;
}
export type FloorPaths = Record<PathName, FloorPath>;
/** Streams as in the inference section: 64 tokens 5 ms apart; warm-up batches of 64, then 1 and 64 at a time. */
const STREAM_TOKENS = 64;
const STREAM_ITL_MS = 5;
const STREAMS = { streamWarmBatches: 3, s1Rounds: 16, s64Rounds: 3 };
const STREAMS_QUICK = { streamWarmBatches: 1, s1Rounds: 4, s64Rounds: 1 };
/** The paths measured streaming: the Fastify floor does not stream. */
const STREAM_PATHS = ["direct", "ceiling", "connect floor", "passerelle"] as const;
export type StreamPathName = (typeof STREAM_PATHS)[number];
/** What a path's streams did, and the CPU its server process spent per stream (ms; 0 for direct, not measured). */
export type StreamFigures = ReturnType<typeof streamOutcome> & { cpuMsPerStream: number };
export type FloorStreams = Record<"c1" | "c64", Record<StreamPathName, StreamFigures>>;
const PLAN = QUICK
  ? { warmupMs: 1_000, c1Warmup: 300, c1Rounds: 4, c1PerRound: 100, c32Rounds: 1, c32RoundMs: 1_500, ...STREAMS_QUICK }
  : { warmupMs: 3_000, c1Warmup: 2_000, c1Rounds: 12, c1PerRound: 400, c32Rounds: 3, c32RoundMs: 2_500, ...STREAMS };

/** `script`: the compiled child.js the inference section ran (undefined: from source through tsx). */
export async function runFloorsBench(script: string | undefined): Promise<{
  section: Section;
  /** Streams through the Connect floor beside the ceiling and Passerelle. */
  streamSection: Section;
  figures: { plan: typeof PLAN; errors: number; paths: FloorPaths; streams: FloorStreams };
}> {
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

    const streamed = await measureStreams(sim, targets, pids);
    const c1 = new Map(PATHS.map((n) => [n, summarize(latencies.get(n) as number[])]));
    const d = c1.get("direct") as ReturnType<typeof summarize>;
    const seconds = (PLAN.c32Rounds * PLAN.c32RoundMs) / 1000;
    const rps = (n: PathName) => (c32.get(n)?.requests ?? 0) / seconds;
    const figures = Object.fromEntries(
      PATHS.map((n): [PathName, FloorPath] => {
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
    ) as FloorPaths;
    const rows = PATHS.map((n) => {
      const s = c1.get(n) as ReturnType<typeof summarize>;
      const f = figures[n];
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
      streamSection: streamSection(streamed),
      figures: { plan: PLAN, errors, paths: figures, streams: streamed },
    };
  } finally {
    for (const c of children.reverse()) await c.stop().catch(() => {});
  }
}

/** 1 and 64 concurrent streams on each streaming path, interleaved, checked frame by frame against a direct one. */
async function measureStreams(
  sim: ChildHandle<{ url: string }>,
  targets: Record<PathName, Target>,
  pids: Record<PathName, number>,
): Promise<FloorStreams> {
  await sim.call("setOptions", { interTokenMs: STREAM_ITL_MS });
  try {
    const [refRec] = await streams(targets.direct, 1);
    const ref = parseStream(refRec as StreamRecord);
    if (!ref.done || ref.frames.length !== STREAM_TOKENS + 1) {
      throw new Error(`reference stream: expected ${STREAM_TOKENS + 1} frames and [DONE], got ${ref.frames.length}`);
    }
    for (let i = 0; i < PLAN.streamWarmBatches; i++) for (const name of STREAM_PATHS) await streams(targets[name], 64);
    const order = (r: number) => {
      const k = r % STREAM_PATHS.length;
      return [...STREAM_PATHS.slice(k), ...STREAM_PATHS.slice(0, k)];
    };
    const run = async (rounds: number, n: number) => {
      const recs = new Map<StreamPathName, StreamRecord[]>(STREAM_PATHS.map((p) => [p, []]));
      const cpu = new Map<StreamPathName, number>(STREAM_PATHS.map((p) => [p, 0]));
      for (let r = 0; r < rounds; r++) {
        for (const name of order(r)) {
          const cpu0 = name === "direct" ? 0 : processCpuMs(pids[name]);
          recs.get(name)?.push(...(await streams(targets[name], n)));
          if (name !== "direct") cpu.set(name, (cpu.get(name) as number) + processCpuMs(pids[name]) - cpu0);
        }
      }
      return Object.fromEntries(
        STREAM_PATHS.map((p) => {
          const got = recs.get(p) as StreamRecord[];
          return [p, { ...streamOutcome(got, ref.frames), cpuMsPerStream: (cpu.get(p) as number) / got.length }];
        }),
      ) as Record<StreamPathName, StreamFigures>;
    };
    return { c1: await run(PLAN.s1Rounds, 1), c64: await run(PLAN.s64Rounds, 64) };
  } finally {
    await sim.call("setOptions", { interTokenMs: 0 });
  }
}

function streamSection(s: FloorStreams): Section {
  const rows = (["c1", "c64"] as const).flatMap((c) => {
    const d = s[c].direct;
    return STREAM_PATHS.map((p) => {
      const x = s[c][p];
      return {
        streams: c === "c1" ? "1 at a time" : "64 at once",
        path: p,
        "added TTFB p50/p99 ms": addedPair(x.ttfb, d.ttfb, p === "direct"),
        "added total p50/p99 ms": addedPair(x.total, d.total, p === "direct", 1),
        ...frameColumns(x.fidelity),
        "server CPU ms/stream": p === "direct" ? "—" : fx(x.cpuMsPerStream, 2),
      };
    });
  });
  return {
    title: "Architecture floors, streaming: the Connect floor's stream path beside the ceiling and Passerelle",
    note:
      `${STREAM_TOKENS} tokens ${STREAM_ITL_MS} ms apart, ${PLAN.s1Rounds} interleaved streams per path one at a time, ` +
      `then ${PLAN.s64Rounds} interleaved batches of 64; frames checked against a direct reference stream (streams.ts). ` +
      "Server CPU: /proc utime+stime of the path's own server process.",
    rows,
  };
}
