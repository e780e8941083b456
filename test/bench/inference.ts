// Over 400 lines on purpose: the inference bench's sections (latency at c=1, throughput at c=32, streams, the
// governed path, the worker pool, the table and JSON output) share the child processes' lifecycle and the
// interleaving logic; stream analysis lives in streams.ts, the pool in pool.ts, the governed path in governed.ts,
// the count of V8's collections in gc.ts.
import { mkdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { compileForBench, startNodeFlags } from "./build.js";
import type { PasserelleChildConfig, PasserelleInfo } from "./child.js";
import { type ChildHandle, startChild } from "./children.js";
import {
  fx,
  loadAverage,
  machineCpuMs,
  processCpuMs,
  processRss,
  QUICK,
  rotation,
  signed,
  sleep,
  startRssSampler,
  summarize,
  TARGETS,
  type TargetName,
  times,
} from "./common.js";
import { type GcTally, gcDuring, gcLine } from "./gc.js";
import { governedTarget, runGoverned } from "./governed.js";
import {
  answerText,
  closedLoop,
  type LatencySplit,
  type LoadRun,
  makeTarget,
  type StreamRecord,
  streams,
  type Target,
} from "./load.js";
import { runPool, runPoolStreams, startPool, sumRss } from "./pool.js";
import { type ProfileSummary, summarizeProfile } from "./profile.js";
import {
  addedPair,
  type addUp,
  BUNCHED_BELOW_MS,
  type Frame,
  frameColumns,
  parseStream,
  streamOutcome,
} from "./streams.js";

/**
 * The inference bench: chat completions straight from the vLLM simulator ("direct"), through Passerelle (auth on,
 * real PostgreSQL, production log level) and through the bench's minimal undici proxy ("ceiling"), measured in
 * one run and interleaved: every section runs in rounds that rotate the three targets, so that whatever else the
 * machine does (other test runs) hits all three alike. Each server runs in a process of its own; the load
 * generator is this process (see children.ts).
 */

const UPSTREAM_KEY = "sk-upstream-bench-0123456789abcdef";
const PUBLIC_MODEL = "bench-chat";
const UPSTREAM_MODEL = "sim-chat";
const TOKENS = 64;
const STREAM_ITL_MS = 5;
/** Concurrent streams of the c=64 rows (issue 4: bunched frames and time to first byte at 64 streams). */
const STREAMS_AT_ONCE = 64;

const PLAN = QUICK
  ? {
      warmupMs: 700,
      c1Warmup: 100,
      c1Rounds: 5,
      c1PerRound: 60,
      c32Rounds: 2,
      c32RoundMs: 1_500,
      profileMs: 1_500,
      s1Rounds: 6,
      s64Rounds: 1,
      streamWarmBatches: 1,
      maxSteps: [64, 128, 256, 512],
      silenceS: 0,
    }
  : {
      warmupMs: 2_000,
      c1Warmup: 300,
      c1Rounds: 20,
      c1PerRound: 100,
      c32Rounds: 5,
      c32RoundMs: 4_000,
      profileMs: 5_000,
      s1Rounds: 24,
      s64Rounds: 4,
      streamWarmBatches: 4,
      maxSteps: [64, 128, 256, 512],
      silenceS: 65,
    };

type Row = Record<string, string | number | boolean | null>;

export interface Section {
  title: string;
  note?: string;
  rows: Row[];
}

type Stats = ReturnType<typeof summarize>;
/** CPU ms per process; `others`: the rest of the machine (other users' processes, the kernel's own work). */
type Cpu = Record<"passerelle" | "ceiling" | "simulator" | "loadgen" | "others", number>;
type C32 = Stats & {
  rps: number;
  rpsMin: number;
  rpsMax: number;
  errors: number;
  elapsedMs: number;
  cpuMsPerRequest: Cpu;
  coresBusy: Cpu;
};
type StreamStats = {
  ttfb: Stats;
  total: Stats;
  fidelity: ReturnType<typeof addUp>;
  proxyCpuMsPerStream: number;
  proxyCores: number;
  simulatorCores: number;
  otherCores: number;
};

export interface InferenceFigures {
  loadAverageAtStart: number[];
  servers?: string;
  loadAverageAtEnd?: number[];
  nonStreamingC1?: Record<TargetName, Stats & { errors: number }>;
  nonStreamingC32?: Record<TargetName, C32>;
  streamsC1?: Record<TargetName, StreamStats>;
  streamsC64?: Record<TargetName, StreamStats>;
  /** Passerelle's c=1 latency split by its Server-Timing (gateway, upstream, outside). */
  nonStreamingC1Split?: Record<keyof LatencySplit, Stats>;
  /** V8's collections in Passerelle during its c=1 rounds. */
  nonStreamingC1Gc?: GcTally;
  /** V8's collections in Passerelle during its batches of the c=64 rows. */
  streamsC64Gc?: GcTally;
  concurrentStreams?: { held: number; stoppedAt: number | null; steps: Record<string, unknown>[] };
  governed?: Awaited<ReturnType<typeof runGoverned>>["figures"];
  /** How long the usage journal took to reach PostgreSQL before the governed section (its c=1 rounds start on an empty one). */
  usageDrainBeforeGovernedMs?: number;
  pool?: { workers: number } & Awaited<ReturnType<typeof runPool>>["figures"];
  /** 64 concurrent paced streams through the worker pool vs direct. */
  poolStreams?: Awaited<ReturnType<typeof runPoolStreams>>["figures"];
  /** Latency (ms) of one request after `seconds` without any: caches and idle connections expired meanwhile. */
  afterSilence?: { seconds: number; ms: Record<TargetName, number> };
  memory?: {
    idleMiB: Record<string, number>;
    passerelleHeapUsedMiB?: { idle: number; afterRun: number };
    /**
     * Passerelle before and after its first administrative writes (the governed target's role, user, key, grant),
     * each after a full collection: those load MikroORM, which serving never does (`ormLoaded`).
     */
    firstAdminWrite?: Record<"before" | "after", { heapMiB: number; rssMiB: number; ormLoaded: boolean }>;
    ormLoadedAtIdle?: boolean;
    /** Passerelle's RSS peak within each phase of the run. */
    passerellePeakByPhaseMiB?: Record<string, number>;
    peakMiB: Record<string, number>;
    highWaterMarkMiB: Record<string, number>;
    idleCpuPct: Record<string, number>;
  };
}

/** The c=1 rounds' latency split (LoadRun.split), each part summarized; undefined when no answer carried one. */
function splitOf(runs: readonly LoadRun[]): Record<keyof LatencySplit, Stats> | undefined {
  const parts = (k: keyof LatencySplit) => runs.flatMap((r) => r.split?.[k] ?? []);
  if (parts("gateway").length === 0) return undefined;
  return {
    gateway: summarize(parts("gateway")),
    upstream: summarize(parts("upstream")),
    outside: summarize(parts("outside")),
  };
}

export interface InferenceResults {
  plan: typeof PLAN;
  sections: Section[];
  figures: InferenceFigures;
  profiles: Record<string, ProfileSummary & { file: string }>;
}

function print(s: Section): void {
  process.stdout.write(`\n${s.title}\n`);
  if (s.note) process.stdout.write(`${s.note}\n`);
  console.table(s.rows);
}

export async function runInferenceBench(resultsDir: string): Promise<InferenceResults> {
  const sections: Section[] = [];
  const figures: InferenceFigures = { loadAverageAtStart: loadAverage() };
  const emit = (s: Section) => {
    sections.push(s);
    print(s);
  };
  const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

  // The servers run compiled, like production (BENCH_FROM_SOURCE=1: from TypeScript through tsx instead;
  // BENCH_PREBUILT=1: this file already runs compiled or bundled, from a tree that holds test/bench/child.js and
  // services/main.js, on a machine without the toolchain, so nothing is compiled).
  const root = path.resolve(import.meta.dirname, "../..");
  const prebuilt = process.env.BENCH_PREBUILT === "1";
  const buildDir = prebuilt ? root : path.join(resultsDir, "build");
  let script: string | undefined;
  if (prebuilt) script = path.join(buildDir, "test/bench/child.js");
  else if (process.env.BENCH_FROM_SOURCE !== "1") {
    const t0 = performance.now();
    const files = await compileForBench(root, buildDir);
    script = path.join(buildDir, "test/bench/child.js");
    log(`compiled ${files} files to ${path.relative(root, buildDir)} in ${Math.round(performance.now() - t0)} ms`);
  }
  // Passerelle runs with npm start's Node flags (package.json); the simulator and the ceiling with Node's defaults.
  const nodeFlags = await startNodeFlags(root);
  figures.servers = script
    ? `compiled JavaScript, node ${nodeFlags.join(" ")} (no source maps, as npm start)`
    : "TypeScript through tsx";

  log("starting the simulator, the ceiling proxy and Passerelle (each in its own process)…");
  const sim = await startChild<{ url: string }>(
    "simulator",
    { apiKey: UPSTREAM_KEY, completionTokens: TOKENS, ttftMs: 0, interTokenMs: 0, maxNumSeqs: 4096 },
    { script },
  );
  const children: ChildHandle<unknown>[] = [sim];
  try {
    const ceiling = await startChild<{ url: string }>("ceiling", { upstreamUrl: sim.info.url }, { script });
    children.push(ceiling);
    const passerelleConfig = {
      upstreamUrl: sim.info.url,
      upstreamKey: UPSTREAM_KEY,
      model: PUBLIC_MODEL,
      upstreamModel: UPSTREAM_MODEL,
      redis: Boolean(process.env.PASSERELLE_TEST_REDIS_URL),
    } satisfies PasserelleChildConfig;
    const childOpts = { script, nodeFlags, env: { PASSERELLE_TEST_LOG: process.env.BENCH_LOG_LEVEL ?? "info" } };
    // Measured as a deployment runs on every start but its first: a first start (another process) migrates the
    // database, creates the admin and applies the models file; the measured one finds them in place.
    const first = await startChild<PasserelleInfo>(
      "passerelle",
      { ...passerelleConfig, keepDatabase: true },
      childOpts,
    );
    await first.stop();
    const passerelle = await startChild<PasserelleInfo>(
      "passerelle",
      { ...passerelleConfig, prepared: { databaseUrl: first.info.databaseUrl, adminKey: first.info.adminKey } },
      childOpts,
    );
    children.push(passerelle);
    const pids3 = { passerelle: passerelle.pid, ceiling: ceiling.pid, simulator: sim.pid };
    const pids = { ...pids3, "load generator": process.pid };

    // Idle memory and CPU: after start, before any request (a second to settle, then 2 s of idle CPU).
    await sleep(1_000);
    const idle = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, processRss(pid).rssMiB]));
    const idleCpu0 = Object.fromEntries(Object.entries(pids3).map(([k, pid]) => [k, processCpuMs(pid)]));
    await sleep(2_000);
    const idleCpuPct = Object.fromEntries(
      Object.entries(pids3).map(([k, pid]) => [k, (100 * (processCpuMs(pid) - (idleCpu0[k] as number))) / 2_000]),
    );
    // V8's heap in use after a full collection: steadier than RSS (which moves by ±5 MiB between runs here).
    const memoryNow = async () => {
      const m = (await passerelle.call("memory")) as { usage: { heapUsed: number }; ormLoaded: boolean };
      return {
        heapMiB: m.usage.heapUsed / 1024 / 1024,
        ormLoaded: m.ormLoaded,
        rssMiB: processRss(passerelle.pid).rssMiB,
      };
    };
    const heapUsedMiB = async () => (await memoryNow()).heapMiB;
    const idleMemory = await memoryNow();
    const heapIdle = idleMemory.heapMiB;
    const rss = startRssSampler(pids, 100);

    const targets: Record<TargetName, Target> = {
      direct: makeTarget("direct", sim.info.url, UPSTREAM_KEY, UPSTREAM_MODEL),
      passerelle: makeTarget("passerelle", passerelle.info.httpUrl, passerelle.info.adminKey, PUBLIC_MODEL),
      ceiling: makeTarget("ceiling", ceiling.info.url, UPSTREAM_KEY, UPSTREAM_MODEL),
    };

    // Sanity: each path answers 200 with the same text.
    const texts: Record<string, string> = {};
    for (const name of TARGETS) texts[name] = await answerText(targets[name]);
    if (texts.passerelle !== texts.direct || texts.ceiling !== texts.direct) {
      throw new Error("the three paths do not give the same answer; the bench would compare different work");
    }

    // Warm-up: JIT, pools, key and model caches, at the concurrency that follows.
    log("warm-up…");
    rss.phase("warm-up");
    for (const name of TARGETS) await closedLoop(targets[name], { connections: 32, durationMs: PLAN.warmupMs });
    for (const name of TARGETS) await closedLoop(targets[name], { connections: 1, requests: PLAN.c1Warmup });

    // ---------------------------------------------------------------- non-streaming, concurrency 1
    log(`non-streaming, concurrency 1: ${PLAN.c1Rounds} rounds × ${PLAN.c1PerRound} requests per path…`);
    rss.phase("c=1");
    const c1: Record<TargetName, LoadRun[]> = { direct: [], passerelle: [], ceiling: [] };
    const gc1 = await gcDuring(passerelle, async (around) => {
      for (let r = 0; r < PLAN.c1Rounds; r++) {
        for (const name of rotation(r)) {
          const split = name === "passerelle";
          const round = () => closedLoop(targets[name], { connections: 1, requests: PLAN.c1PerRound, split });
          c1[name].push(name === "passerelle" ? await around(round) : await round());
        }
      }
    });
    figures.nonStreamingC1Gc = gc1;
    const c1s = Object.fromEntries(
      TARGETS.map((n) => [n, { ...summarize(c1[n].flatMap((x) => x.latencies)), errors: sumErrors(c1[n]) }]),
    ) as Record<TargetName, Stats & { errors: number }>;
    figures.nonStreamingC1 = c1s;
    emit({
      title: "Non-streaming chat completion, concurrency 1 (latency, ms; added = path − direct, same percentile)",
      note:
        `${PLAN.c1Rounds} interleaved rounds × ${PLAN.c1PerRound} requests per path (${TOKENS}-token answers), after warm-up. ` +
        `V8 collections in Passerelle during its rounds: ${gcLine(gc1)}; a request that meets one waits for it, so ` +
        "when they outnumber 1 % of the requests they reach the p99.",
      rows: TARGETS.map((n) => ({
        path: n,
        requests: c1s[n].n,
        errors: c1s[n].errors,
        "p50 ms": fx(c1s[n].p50, 3),
        "p90 ms": fx(c1s[n].p90, 3),
        "p99 ms": fx(c1s[n].p99, 3),
        "mean ms": fx(c1s[n].mean, 3),
        "added p50 ms": n === "direct" ? "—" : signed(c1s[n].p50 - c1s.direct.p50, 3),
        "added p99 ms": n === "direct" ? "—" : signed(c1s[n].p99 - c1s.direct.p99, 3),
        "p50 vs direct": times(c1s[n].p50, c1s.direct.p50),
      })),
    });
    const split = splitOf(c1.passerelle);
    if (split) {
      figures.nonStreamingC1Split = split;
      emit({
        title:
          "Where Passerelle's concurrency-1 latency goes (ms; its own Server-Timing on each answer, same requests)",
        note:
          "gateway: from the request's arrival in Fastify to its answer's headers, less the upstream wait (auth, limits, " +
          "routing, mapping); upstream: Passerelle waiting on the model server (its undici client included); outside: " +
          "the rest of what the client measured (the client↔gateway hops, the HTTP parse, the answer's serialization " +
          `and write). Direct, the whole exchange: p50 ${fx(c1s.direct.p50, 3)}, p99 ${fx(c1s.direct.p99, 3)}. ` +
          "Percentiles of each part taken on their own.",
        rows: (["gateway", "upstream", "outside"] as const).map((part) => ({
          part,
          requests: split[part].n,
          "p50 ms": fx(split[part].p50, 3),
          "p90 ms": fx(split[part].p90, 3),
          "p99 ms": fx(split[part].p99, 3),
          "mean ms": fx(split[part].mean, 3),
        })),
      });
    }

    // ---------------------------------------------------------------- non-streaming, concurrency 32
    log(`non-streaming, concurrency 32: ${PLAN.c32Rounds} rounds × ${PLAN.c32RoundMs} ms per path…`);
    rss.phase("c=32");
    const cpu = cpuMeter(pids3);
    const c32: Record<TargetName, LoadRun[]> = { direct: [], passerelle: [], ceiling: [] };
    for (let r = 0; r < PLAN.c32Rounds; r++) {
      for (const name of rotation(r)) {
        c32[name].push(
          await cpu.around(name, () => closedLoop(targets[name], { connections: 32, durationMs: PLAN.c32RoundMs })),
        );
      }
    }
    const c32s = Object.fromEntries(
      TARGETS.map((n) => {
        const runs = c32[n];
        const ok = runs.reduce((a, x) => a + x.latencies.length, 0);
        const elapsed = runs.reduce((a, x) => a + x.elapsedMs, 0);
        const perRound = runs.map((x) => (1000 * x.latencies.length) / x.elapsedMs);
        return [
          n,
          {
            ...summarize(runs.flatMap((x) => x.latencies)),
            rps: (1000 * ok) / elapsed,
            rpsMin: Math.min(...perRound),
            rpsMax: Math.max(...perRound),
            errors: sumErrors(runs),
            elapsedMs: elapsed,
            cpuMsPerRequest: mapValues(cpu.totals[n], (ms) => ms / ok),
            coresBusy: mapValues(cpu.totals[n], (ms) => ms / elapsed),
          },
        ];
      }),
    ) as Record<TargetName, C32>;
    figures.nonStreamingC32 = c32s;
    emit({
      title: "Non-streaming chat completion, concurrency 32 (throughput and latency)",
      note:
        `${PLAN.c32Rounds} interleaved rounds × ${PLAN.c32RoundMs / 1000} s per path. CPU: /proc utime+stime of each ` +
        "process over its own rounds ÷ answers (the load generator is this process, measured with process.cpuUsage; " +
        "it is not in the proxy's figure). cores = CPU time ÷ wall time. other procs: the rest of the machine " +
        "(/proc/stat minus the bench's processes): above ~0.1 core, something else competed for the 2 cores.",
      rows: TARGETS.map((n) => ({
        path: n,
        "req/s": Math.round(c32s[n].rps),
        "round min–max": `${Math.round(c32s[n].rpsMin)}–${Math.round(c32s[n].rpsMax)}`,
        "vs direct": times(c32s[n].rps, c32s.direct.rps),
        "vs ceiling": times(c32s[n].rps, c32s.ceiling.rps),
        "p50 ms": fx(c32s[n].p50, 2),
        "p99 ms": fx(c32s[n].p99, 2),
        "p99 vs direct": times(c32s[n].p99, c32s.direct.p99),
        errors: c32s[n].errors,
        "proxy CPU ms/req": n === "direct" ? "—" : fx(proxyCpu(n, c32s[n].cpuMsPerRequest), 3),
        "proxy cores": n === "direct" ? "—" : fx(proxyCpu(n, c32s[n].coresBusy), 2),
        "sim CPU ms/req": fx(c32s[n].cpuMsPerRequest.simulator, 3),
        "loadgen CPU ms/req": fx(c32s[n].cpuMsPerRequest.loadgen, 3),
        "other procs cores": fx(c32s[n].coresBusy.others, 2),
      })),
    });

    // ---------------------------------------------------------------- governed path (limits, budget, usage)
    log(`governed path: limits (${process.env.PASSERELLE_TEST_REDIS_URL ? "Redis" : "in-process"}), budget, usage…`);
    rss.phase("governed");
    // The governed target's role, user, key and grant are the run's first administrative writes: they load MikroORM.
    const beforeAdmin = await memoryNow();
    const governed = await governedTarget(passerelle.info.httpUrl, passerelle.info.adminKey, PUBLIC_MODEL);
    const afterAdmin = await memoryNow();
    await closedLoop(governed, { connections: 32, durationMs: PLAN.warmupMs });
    // The sections before left tens of thousands of usage records in the journal: the flusher writing them to
    // PostgreSQL while the c=1 rounds run would be charged to the governed figures. Start with an empty journal.
    const drained = await passerelle.call<{ depth: number; waitedMs: number }>("usage-drained", { timeoutMs: 60_000 });
    log(`usage journal drained in ${Math.round(drained.waitedMs)} ms (depth ${drained.depth})`);
    figures.usageDrainBeforeGovernedMs = drained.waitedMs;
    const gov = await runGoverned(
      { direct: targets.direct, ungoverned: targets.passerelle, governed },
      { c1Rounds: PLAN.c1Rounds, c1PerRound: PLAN.c1PerRound, c32Rounds: PLAN.c32Rounds, c32RoundMs: PLAN.c32RoundMs },
    );
    figures.governed = gov.figures;
    emit({
      title: "Governed path: limits + budget + usage record, beside the ungoverned path (same process, same run)",
      note:
        "ungoverned = the admin key (no limits, no budget; its usage record is still journaled). governed = a user whose " +
        `role has limits on the model (${process.env.PASSERELLE_TEST_REDIS_URL ? "Redis" : "in-process"} limiter) and who has a budget on a priced model: ` +
        "reserve → settle of both on every request (the budget on this process's lease). Target (issue 5): governed added p99 at c=1 ≤ 1 ms. " +
        "gateway's own: Server-Timing gateway;dur on each c=1 answer (time in Passerelle, hops and upstream wait left out).",
      rows: gov.rows,
    });

    // ---------------------------------------------------------------- several processes (PASSERELLE_WORKERS)
    if (script && process.env.PASSERELLE_TEST_REDIS_URL && process.env.BENCH_POOL !== "0") {
      // BENCH_WORKERS: the pool's size (default: one worker per core, as an operator would start it).
      const workers = Number(process.env.BENCH_WORKERS) || Math.max(2, os.availableParallelism());
      log(`worker pool: npm start's entry point with PASSERELLE_WORKERS=${workers}, c=32…`);
      rss.phase("worker pool (other processes)");
      const pool = await startPool({
        buildDir,
        nodeFlags,
        workers,
        upstreamUrl: sim.info.url,
        upstreamKey: UPSTREAM_KEY,
        model: PUBLIC_MODEL,
        upstreamModel: UPSTREAM_MODEL,
        logLevel: process.env.BENCH_LOG_LEVEL ?? "info",
      });
      try {
        await sleep(1_000);
        const idleMiB = sumRss(pool.pids());
        await closedLoop(pool.target, { connections: 32, durationMs: PLAN.warmupMs });
        const res = await runPool(
          { direct: targets.direct, single: targets.passerelle, pool: pool.target },
          pool,
          passerelle.pid,
          { rounds: PLAN.c32Rounds, roundMs: PLAN.c32RoundMs },
        );
        res.figures.poolIdleRssMiB = idleMiB;
        figures.pool = { workers, ...res.figures };
        emit({
          title: `Several processes: PASSERELLE_WORKERS=${workers} (npm start's compiled entry point) vs one process, c=32`,
          note:
            "The pool is a primary and its workers sharing the port (round-robin), on PostgreSQL and Redis like the " +
            `governed path; CPU and RSS are summed over its processes (idle ${fx(idleMiB, 1)} MiB, peak ` +
            `${fx(res.figures.poolPeakRssMiB, 1)} MiB). On this machine the simulator and the load generator share the ` +
            "same cores.",
          rows: res.rows,
        });
        // The same pool under 64 paced streams: one process's core is what limits its stream figures.
        log(`worker pool: ${STREAMS_AT_ONCE} concurrent streams of ${TOKENS} chunks ${STREAM_ITL_MS} ms apart…`);
        await sim.call("setOptions", { interTokenMs: STREAM_ITL_MS });
        try {
          const [refRec] = await streams(targets.direct, 1);
          const ps = await runPoolStreams(
            { direct: targets.direct, pool: pool.target },
            pool,
            parseStream(refRec as StreamRecord).frames,
            { rounds: PLAN.s64Rounds, warmBatches: PLAN.streamWarmBatches * 2, streams: STREAMS_AT_ONCE },
          );
          figures.poolStreams = ps.figures;
          emit({
            title: `Several processes: ${STREAMS_AT_ONCE} concurrent streams through PASSERELLE_WORKERS=${workers} vs direct (${PLAN.s64Rounds} interleaved batches)`,
            note:
              "As the single-process rows below (same frames, same bunched measure), with the connections spread over " +
              "the workers by the primary; proxy cores: the pool's CPU over the wall time of its batches.",
            rows: ps.rows,
          });
        } finally {
          await sim.call("setOptions", { interTokenMs: 0 });
        }
      } finally {
        await pool.stop();
      }
    }

    // ---------------------------------------------------------------- profile of the Passerelle path
    const profiles: Record<string, ProfileSummary & { file: string }> = {};
    const profiling = process.env.BENCH_PROFILE !== "0";
    /** Runs `load` with V8's sampling profiler on in Passerelle (an extra run, outside the measured figures). */
    const profileRun = async (key: string, what: string, load: () => Promise<unknown>) => {
      log(`profiling Passerelle: ${what} (extra run, not part of the figures above)…`);
      rss.phase("profiling");
      const file = path.join(resultsDir, `passerelle-${key}.cpuprofile`);
      await mkdir(resultsDir, { recursive: true });
      await passerelle.call("profile-start");
      await load();
      await passerelle.call("profile-stop", { file });
      const p = { ...(await summarizeProfile(file, 25, [buildDir, root])), file: path.relative(root, file) };
      profiles[key] = p;
      emit({
        title: `Where Passerelle's CPU goes, ${what}: self time by package (V8 sampling profiler, 200 µs)`,
        note: `Profile: ${p.file} (Chrome DevTools opens it). The main thread was busy ${fx(p.busyPct, 1)} % of the time.`,
        rows: p.byPackage
          .slice(0, 16)
          .map((x) => ({ package: x.name, "self ms": fx(x.ms, 0), "% of busy": fx(x.pct, 1) })),
      });
      emit({
        title: `Top self-time functions in Passerelle, ${what}`,
        rows: p.byFunction.map((f) => ({
          function: f.name.length > 90 ? `${f.name.slice(0, 87)}…` : f.name,
          package: f.package,
          "self ms": fx(f.ms, 0),
          "% of busy": fx(f.pct, 1),
        })),
      });
    };
    if (profiling) {
      await profileRun("c32", "non-streaming at concurrency 32", () =>
        closedLoop(targets.passerelle, { connections: 32, durationMs: PLAN.profileMs }),
      );
    }

    // ---------------------------------------------------------------- streams
    await sim.call("setOptions", { interTokenMs: STREAM_ITL_MS });
    log(`streams of ${TOKENS} chunks ${STREAM_ITL_MS} ms apart: reference, concurrency 1 and 64…`);
    rss.phase("streams c=1, c=64");
    const [refRec] = await streams(targets.direct, 1);
    const ref = parseStream(refRec as StreamRecord);
    if (!ref.done || ref.frames.length !== TOKENS + 1) {
      throw new Error(`reference stream: expected ${TOKENS + 1} frames and [DONE], got ${ref.frames.length}`);
    }
    const reference: Frame[] = ref.frames;
    // Warm the stream path of each target as the unary path was warmed: until the JIT is done with it. Measured: the
    // first batches of 64 streams compile the stream path (V8's optimizing compiler on its background threads), and
    // until then Passerelle spent ~140 µs of CPU per frame, against ~90 once warm.
    for (let i = 0; i < PLAN.streamWarmBatches; i++) for (const name of TARGETS) await streams(targets[name], 64);

    const streamRows = (
      label: string,
      recs: Record<TargetName, StreamRecord[]>,
      meter: ReturnType<typeof cpuMeter>,
    ) => {
      const stats = Object.fromEntries(
        TARGETS.map((n) => {
          const { streams: count, ...outcome } = streamOutcome(recs[n], reference);
          return [
            n,
            {
              ...outcome,
              proxyCpuMsPerStream: proxyCpu(n, meter.totals[n]) / count,
              proxyCores: proxyCpu(n, meter.totals[n]) / meter.wallMs[n],
              simulatorCores: meter.totals[n].simulator / meter.wallMs[n],
              otherCores: meter.totals[n].others / meter.wallMs[n],
            },
          ];
        }),
      ) as Record<TargetName, StreamStats>;
      const rows = TARGETS.map((n) => {
        const s = stats[n];
        const d = stats.direct;
        return {
          path: n,
          streams: s.fidelity.streams,
          "TTFB p50 ms": fx(s.ttfb.p50, 2),
          "TTFB p99 ms": fx(s.ttfb.p99, 2),
          "added TTFB p50/p99 ms": addedPair(s.ttfb, d.ttfb, n === "direct"),
          "total p50 ms": fx(s.total.p50, 1),
          "total p99 ms": fx(s.total.p99, 1),
          "added total p50/p99 ms": addedPair(s.total, d.total, n === "direct", 1),
          ...frameColumns(s.fidelity),
          "bunched vs direct": n === "direct" ? "—" : signed(s.fidelity.bunchedPct - d.fidelity.bunchedPct, 2),
          "proxy CPU ms/stream": n === "direct" ? "—" : fx(s.proxyCpuMsPerStream, 2),
          "proxy cores": n === "direct" ? "—" : fx(s.proxyCores, 2),
          "sim cores": fx(s.simulatorCores, 2),
          "other procs cores": fx(s.otherCores, 2),
        };
      });
      return { stats, rows, label };
    };
    const bunchedNote =
      `Frames: SSE JSON events ([DONE] apart), ${TOKENS + 1} per stream (role chunk + ${TOKENS} tokens), checked ` +
      `against a direct reference stream. Bunched: a token frame due ${STREAM_ITL_MS} ms after the previous one ` +
      `that reached the client < ${BUNCHED_BELOW_MS} ms after it (% of the ${TOKENS - 1} such frames per stream). ` +
      "TTFB: request start → first frame received.";

    const s1: Record<TargetName, StreamRecord[]> = { direct: [], passerelle: [], ceiling: [] };
    const m1 = cpuMeter(pids3);
    for (let r = 0; r < PLAN.s1Rounds; r++) {
      for (const name of rotation(r)) s1[name].push(...(await m1.around(name, () => streams(targets[name], 1))));
    }
    const s1r = streamRows("c1", s1, m1);
    emit({
      title: `Streams, concurrency 1 (${PLAN.s1Rounds} interleaved streams per path)`,
      note: bunchedNote,
      rows: s1r.rows,
    });

    const s64: Record<TargetName, StreamRecord[]> = { direct: [], passerelle: [], ceiling: [] };
    const m64 = cpuMeter(pids3);
    const gc64 = await gcDuring(passerelle, async (around) => {
      for (let r = 0; r < PLAN.s64Rounds; r++) {
        for (const name of rotation(r)) {
          const batch = () => m64.around(name, () => streams(targets[name], 64));
          s64[name].push(...(name === "passerelle" ? await around(batch) : await batch()));
        }
      }
    });
    const s64r = streamRows("c64", s64, m64);
    emit({
      title: `Streams, concurrency 64 (${PLAN.s64Rounds} interleaved batches of 64 per path)`,
      note:
        `V8 collections in Passerelle during its batches: ${gcLine(gc64)}. A major collection pauses the event loop ` +
        "for several ms, and the next frame of every open stream then arrives bunched: whether one lands in a batch " +
        "moves the bunched figure from run to run (per-stream state outlives the young generation, ~20 KiB a stream, " +
        "and the old generation fills up every few batches).",
      rows: s64r.rows,
    });
    figures.streamsC1 = s1r.stats;
    figures.streamsC64 = s64r.stats;
    figures.streamsC64Gc = gc64;
    if (profiling) await profileRun("s64", "64 concurrent streams", () => streams(targets.passerelle, 64));

    // ---------------------------------------------------------------- concurrent streams held
    log(`concurrent streams: steps ${PLAN.maxSteps.join(", ")}…`);
    rss.phase("concurrent streams");
    const stepRows: Row[] = [];
    const steps: Record<string, unknown>[] = [];
    let held = 0;
    let stoppedAt: number | null = null;
    for (const n of PLAN.maxSteps) {
      const recs: Record<TargetName, StreamRecord[]> = { direct: [], passerelle: [], ceiling: [] };
      const m = cpuMeter(pids3);
      for (const name of rotation(PLAN.maxSteps.indexOf(n))) {
        recs[name] = await m.around(name, () => streams(targets[name], n));
      }
      const { stats, rows } = streamRows(`n${n}`, recs, m);
      steps.push({ streams: n, ...stats });
      for (const row of rows) {
        stepRows.push({
          streams: n,
          path: row.path,
          "TTFB p50 ms": row["TTFB p50 ms"],
          "TTFB p99 ms": row["TTFB p99 ms"],
          "total p99 ms": row["total p99 ms"],
          frames: row.frames,
          lost: row.lost,
          merged: row.merged,
          reordered: row.reordered,
          "extra/err": row["extra/err"],
          incomplete: row.incomplete,
          "bunched %": row["bunched %"],
          "proxy cores": row["proxy cores"],
          "sim cores": row["sim cores"],
          "other procs cores": row["other procs cores"],
        });
      }
      const p = stats.passerelle.fidelity;
      if (p.lost > 0 || p.incomplete > 0 || p.merged > 0 || p.reordered > 0) {
        stoppedAt = n;
        break;
      }
      held = n;
    }
    figures.concurrentStreams = { held, stoppedAt, steps };
    emit({
      title: `Concurrent streams held through Passerelle with no lost frame: ${held || "none"}${
        stoppedAt ? ` (frames lost or damaged at ${stoppedAt})` : held === 512 ? " (the bench stops at 512)" : ""
      }`,
      note:
        "One batch per path per step, all streams opened at once. On this 2-core machine the simulator, Passerelle, " +
        "the ceiling and the load generator share two cores: at high counts the upstream itself falls behind its " +
        "5 ms pace (see direct), which is the machine's limit, not the gateway's.",
      rows: stepRows,
    });

    // ---------------------------------------------------------------- the first request after a silence
    // What a low-traffic deployment meets most: a request after a minute without any. The auth cache (30 s), the
    // model registry's (60 s) and the budget owners' have expired, idle connections may have been closed. One
    // request per path, direct first, after one shared silence: a single sample, informative.
    if (PLAN.silenceS > 0) {
      log(`the first request after ${PLAN.silenceS} s of silence…`);
      rss.phase("silence");
      // Back to the unary sections' upstream: answers at once (the stream sections paced tokens 5 ms apart).
      await sim.call("setOptions", { interTokenMs: 0 });
      await sleep(PLAN.silenceS * 1000);
      const ms = {} as Record<TargetName, number>;
      for (const name of TARGETS) {
        ms[name] = (await closedLoop(targets[name], { connections: 1, requests: 1 })).latencies[0] ?? Number.NaN;
      }
      figures.afterSilence = { seconds: PLAN.silenceS, ms };
      emit({
        title: `The first request after ${PLAN.silenceS} s without any (latency, ms; one sample per path)`,
        note: "Direct first, then Passerelle, then the ceiling; each path's keep-alive connections may have closed.",
        rows: TARGETS.map((n) => ({
          path: n,
          ms: fx(ms[n], 2),
          "added ms": n === "direct" ? "—" : signed(ms[n] - ms.direct, 2),
        })),
      });
    }

    // ---------------------------------------------------------------- memory
    const peaks = rss.stop();
    const hwm = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, processRss(pid).hwmMiB]));
    const heapAfter = await heapUsedMiB();
    figures.memory = {
      idleMiB: idle,
      peakMiB: peaks,
      highWaterMarkMiB: hwm,
      idleCpuPct,
      passerelleHeapUsedMiB: { idle: heapIdle, afterRun: heapAfter },
      firstAdminWrite: { before: beforeAdmin, after: afterAdmin },
      passerellePeakByPhaseMiB: Object.fromEntries(
        Object.entries(rss.byPhase).map(([phase, peaksIn]) => [phase, peaksIn.passerelle ?? Number.NaN]),
      ),
      ormLoadedAtIdle: idleMemory.ormLoaded,
    };
    emit({
      title:
        "Memory (RSS, MiB): idle = after a restart (database prepared by a first start), before any request; " +
        "peak = highest 100 ms sample over the run",
      note:
        `Servers run as ${figures.servers}; the load generator (this process) runs through tsx and holds the ` +
        "TypeScript compiler that built them. The ceiling proxy shows what an almost empty Node process weighs here. " +
        `Passerelle's V8 heap in use after a full collection: ${fx(heapIdle, 1)} MiB idle, ${fx(heapAfter, 1)} MiB ` +
        "after the run (what the run left: the tokenizer, caches, pools; a leak would show here). MikroORM " +
        `${idleMemory.ormLoaded ? "WAS" : "was not"} loaded at idle; the first administrative writes (the governed ` +
        `target's) loaded it: heap ${fx(beforeAdmin.heapMiB, 1)} → ${fx(afterAdmin.heapMiB, 1)} MiB, RSS ` +
        `${fx(beforeAdmin.rssMiB, 1)} → ${fx(afterAdmin.rssMiB, 1)} MiB. Passerelle's peak by phase: ` +
        Object.entries(rss.byPhase)
          .map(([phase, peaksIn]) => `${phase} ${fx(peaksIn.passerelle ?? Number.NaN, 1)}`)
          .join(", ") +
        ".",
      rows: Object.keys(pids).map((k) => ({
        process: k,
        "idle MiB": fx(idle[k] as number, 1),
        "peak MiB": fx(peaks[k] as number, 1),
        "kernel high-water MiB": fx(hwm[k] as number, 1),
        "idle vs ceiling": k === "ceiling" ? "—" : times(idle[k] as number, idle.ceiling as number),
        "peak vs ceiling": k === "ceiling" ? "—" : times(peaks[k] as number, peaks.ceiling as number),
        "idle CPU % (2 s)": k in idleCpuPct ? fx(idleCpuPct[k] as number, 1) : "—",
      })),
    });

    figures.loadAverageAtEnd = loadAverage();
    await Promise.all(Object.values(targets).map((t) => t.pool.close()));
    return { plan: PLAN, sections, figures, profiles };
  } finally {
    for (const c of children.reverse()) await c.stop().catch(() => undefined);
  }
}

/**
 * CPU time of each process over the phases run through `around`, summed per target: the servers' from /proc
 * (every thread), this process's (the load generator) from process.cpuUsage(). Also sums the phases' wall time.
 */
function cpuMeter(pids: { passerelle: number; ceiling: number; simulator: number }) {
  const zero = (): Cpu => ({ passerelle: 0, ceiling: 0, simulator: 0, loadgen: 0, others: 0 });
  const totals: Record<TargetName, Cpu> = { direct: zero(), passerelle: zero(), ceiling: zero() };
  const wallMs: Record<TargetName, number> = { direct: 0, passerelle: 0, ceiling: 0 };
  return {
    totals,
    wallMs,
    async around<T>(name: TargetName, fn: () => Promise<T>): Promise<T> {
      const before = {
        passerelle: processCpuMs(pids.passerelle),
        ceiling: processCpuMs(pids.ceiling),
        simulator: processCpuMs(pids.simulator),
        loadgen: process.cpuUsage(),
        machine: machineCpuMs(),
      };
      const t0 = performance.now();
      const out = await fn();
      wallMs[name] += performance.now() - t0;
      const lg = process.cpuUsage(before.loadgen);
      const d = {
        passerelle: processCpuMs(pids.passerelle) - before.passerelle,
        ceiling: processCpuMs(pids.ceiling) - before.ceiling,
        simulator: processCpuMs(pids.simulator) - before.simulator,
        loadgen: (lg.user + lg.system) / 1000,
      };
      const acc = totals[name];
      acc.passerelle += d.passerelle;
      acc.ceiling += d.ceiling;
      acc.simulator += d.simulator;
      acc.loadgen += d.loadgen;
      acc.others += Math.max(0, machineCpuMs() - before.machine - d.passerelle - d.ceiling - d.simulator - d.loadgen);
      return out;
    },
  };
}

/** The CPU of the process that proxies for `name` (none for direct). */
function proxyCpu(name: TargetName, c: Cpu): number {
  return name === "passerelle" ? c.passerelle : name === "ceiling" ? c.ceiling : Number.NaN;
}

function mapValues<K extends string>(o: Record<K, number>, f: (v: number) => number): Record<K, number> {
  return Object.fromEntries(Object.entries<number>(o).map(([k, v]) => [k, f(v)])) as Record<K, number>;
}

function sumErrors(runs: readonly LoadRun[]): number {
  return runs.reduce((a, x) => a + x.errors, 0);
}

/** The headline figures against the issue's targets and the Node peer measured on this machine kind. */
export function headline(r: InferenceResults): Section {
  const f = r.figures;
  const c1 = f.nonStreamingC1;
  const c32 = f.nonStreamingC32;
  const s1 = f.streamsC1;
  const s64 = f.streamsC64;
  const mem = f.memory;
  if (!c1 || !c32 || !s1 || !s64 || !mem || !f.concurrentStreams) throw new Error("incomplete results");
  const row = (
    figure: string,
    passerelle: number | string,
    ceiling: number | string,
    target: string,
    peer: string,
  ) => ({
    figure,
    passerelle: typeof passerelle === "string" || Number.isFinite(passerelle) ? passerelle : "n/a",
    ceiling,
    target,
    peer,
  });
  return {
    title: "Headline (Passerelle; targets and the Node peer's figures from issue 4; informative, nothing asserted)",
    rows: [
      row(
        "added latency p50, c=1 (ms)",
        fx(c1.passerelle.p50 - c1.direct.p50, 3),
        fx(c1.ceiling.p50 - c1.direct.p50, 3),
        "≤ 0.3",
        "+0.9",
      ),
      row(
        "added latency p99, c=1 (ms)",
        fx(c1.passerelle.p99 - c1.direct.p99, 3),
        fx(c1.ceiling.p99 - c1.direct.p99, 3),
        "≤ 1",
        "+5–6",
      ),
      ...(f.nonStreamingC1Split
        ? [
            row(
              "gateway's own time p50 / p99, c=1 (ms; Server-Timing)",
              `${fx(f.nonStreamingC1Split.gateway.p50, 3)} / ${fx(f.nonStreamingC1Split.gateway.p99, 3)}`,
              "—",
              "—",
              "—",
            ),
          ]
        : []),
      row("req/s, c=32", Math.round(c32.passerelle.rps), Math.round(c32.ceiling.rps), "≥ 3,210 (3× peer)", "~1,070"),
      row("Passerelle ÷ ceiling req/s, c=32", fx(c32.passerelle.rps / c32.ceiling.rps, 2), 1, "—", "—"),
      row(
        "proxy CPU per request, c=32 (ms)",
        fx(c32.passerelle.cpuMsPerRequest.passerelle, 3),
        fx(c32.ceiling.cpuMsPerRequest.ceiling, 3),
        "—",
        "≈ 1.2",
      ),
      row(
        "added TTFB p50, 1 stream (ms)",
        fx(s1.passerelle.ttfb.p50 - s1.direct.ttfb.p50, 2),
        fx(s1.ceiling.ttfb.p50 - s1.direct.ttfb.p50, 2),
        "≤ 1",
        "+27",
      ),
      row(
        "added TTFB p50, 64 streams (ms)",
        fx(s64.passerelle.ttfb.p50 - s64.direct.ttfb.p50, 2),
        fx(s64.ceiling.ttfb.p50 - s64.direct.ttfb.p50, 2),
        "≤ 1",
        "+27",
      ),
      row(
        "bunched frames, 64 streams (%)",
        fx(s64.passerelle.fidelity.bunchedPct, 2),
        fx(s64.ceiling.fidelity.bunchedPct, 2),
        `≤ 2 (direct ${fx(s64.direct.fidelity.bunchedPct, 2)})`,
        "25",
      ),
      row("concurrent streams with 0 lost frames", f.concurrentStreams.held, "—", "≥ 512", "—"),
      ...(f.afterSilence
        ? [
            row(
              `added latency, first request after ${f.afterSilence.seconds} s of silence (ms)`,
              fx(f.afterSilence.ms.passerelle - f.afterSilence.ms.direct, 2),
              fx(f.afterSilence.ms.ceiling - f.afterSilence.ms.direct, 2),
              "—",
              "—",
            ),
          ]
        : []),
      row(
        "RSS idle (MiB)",
        fx(mem.idleMiB.passerelle as number, 1),
        fx(mem.idleMiB.ceiling as number, 1),
        "≤ 100",
        "—",
      ),
      row(
        "RSS peak (MiB)",
        fx(mem.peakMiB.passerelle as number, 1),
        fx(mem.peakMiB.ceiling as number, 1),
        "≤ 250",
        "230",
      ),
      ...(mem.passerelleHeapUsedMiB
        ? [
            row("V8 heap in use after a full GC, idle (MiB)", fx(mem.passerelleHeapUsedMiB.idle, 1), "—", "—", "—"),
            row(
              "V8 heap in use after a full GC, after the run (MiB)",
              fx(mem.passerelleHeapUsedMiB.afterRun, 1),
              "—",
              "—",
              "—",
            ),
          ]
        : []),
      ...(mem.firstAdminWrite
        ? [
            row(
              "first admin write (loads the ORM): heap / RSS added (MiB)",
              `+${fx(mem.firstAdminWrite.after.heapMiB - mem.firstAdminWrite.before.heapMiB, 1)} / +${fx(mem.firstAdminWrite.after.rssMiB - mem.firstAdminWrite.before.rssMiB, 1)}`,
              "—",
              "—",
              "—",
            ),
          ]
        : []),
      ...(f.pool
        ? [
            row(
              `req/s, c=32, ${f.pool.workers} worker processes`,
              Math.round(f.pool.pool.rps),
              "—",
              "≥ 3,210",
              "~1,070",
            ),
            row(
              `RSS idle, ${f.pool.workers} workers + primary (MiB)`,
              fx(f.pool.poolIdleRssMiB ?? Number.NaN, 1),
              "—",
              "—",
              "—",
            ),
            row(`RSS peak, ${f.pool.workers} workers + primary (MiB)`, fx(f.pool.poolPeakRssMiB, 1), "—", "—", "—"),
          ]
        : []),
      ...(f.poolStreams
        ? [
            row(
              `added TTFB p50, 64 streams, ${f.poolStreams.workers} workers (ms)`,
              fx(f.poolStreams.pool.ttfb.p50 - f.poolStreams.direct.ttfb.p50, 2),
              "—",
              "≤ 1",
              "+27",
            ),
            row(
              `bunched frames, 64 streams, ${f.poolStreams.workers} workers (%)`,
              fx(f.poolStreams.pool.fidelity.bunchedPct, 2),
              "—",
              `≤ 2 (direct ${fx(f.poolStreams.direct.fidelity.bunchedPct, 2)})`,
              "25",
            ),
          ]
        : []),
      ...(f.governed
        ? [
            row("governed: added p99, c=1 (ms)", fx(f.governed.addedP99GovernedMs, 3), "—", "≤ 1 (issue 5)", "—"),
            row(
              "governed: gateway's own time p50 / p99, c=1 (ms; Server-Timing)",
              `${fx(f.governed.gatewayC1.governed.p50, 3)} / ${fx(f.governed.gatewayC1.governed.p99, 3)}`,
              "—",
              "—",
              "—",
            ),
            row("governed ÷ ungoverned req/s, c=32", fx(f.governed.governedVsUngoverned, 2), "—", "—", "—"),
          ]
        : []),
    ],
  };
}
