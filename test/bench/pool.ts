import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createTestDatabase } from "../support/db.js";
import { fx, processCpuMs, processRss, summarize, times } from "./common.js";
import { closedLoop, type LoadRun, makeTarget, type StreamRecord, streams, type Target } from "./load.js";
import { addedPair, type Frame, frameColumns, streamOutcome } from "./streams.js";

/**
 * Passerelle as `npm start` runs it with PASSERELLE_WORKERS (services/workers.ts): the compiled entry point, a
 * primary and N worker processes sharing the port, on a fresh database of the bench's PostgreSQL and the test
 * Redis (both required by the pool). Its CPU and memory are the sum of the primary's and the workers'.
 */
export interface Pool {
  target: Target;
  pids(): number[];
  stop(): Promise<void>;
}

const KEY = "sk-bench-pool-0123456789abcdefghijklmnop";

export async function startPool(opts: {
  buildDir: string;
  /** `npm start`'s Node flags (build.ts startNodeFlags). */
  nodeFlags: string[];
  workers: number;
  upstreamUrl: string;
  upstreamKey: string;
  model: string;
  upstreamModel: string;
  logLevel: string;
}): Promise<Pool> {
  const redisUrl = process.env.PASSERELLE_TEST_REDIS_URL;
  if (!redisUrl) throw new Error("the worker pool needs PASSERELLE_TEST_REDIS_URL");
  const db = await createTestDatabase("benchpool");
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-bench-pool-"));
  await fs.writeFile(
    path.join(dir, "models.yaml"),
    `models:\n  - name: ${opts.model}\n    type: text-generation\n` +
      "    costs: { prompt_tokens: 0.1, completion_tokens: 0.3 }\n    providers:\n" +
      `      - { type: vllm, url: "${opts.upstreamUrl}", key: ${opts.upstreamKey}, model_name: ${opts.upstreamModel}, ` +
      "timeout_s: 120, max_concurrency: 0 }\n",
  );
  // Output to a file (read for the banner): a pipe would make this process, the load generator, read every log line.
  const logFile = path.join(dir, "out.log");
  const out = await fs.open(logFile, "a");
  const child: ChildProcess = spawn(
    process.execPath,
    [...opts.nodeFlags, path.join(opts.buildDir, "services/main.js")],
    {
      env: {
        ...process.env,
        DATABASE_URL: db.url,
        REDIS_URL: redisUrl,
        PASSERELLE_WORKERS: String(opts.workers),
        PASSERELLE_HTTP_HOST: "127.0.0.1",
        PASSERELLE_HTTP_PORT: "0",
        PASSERELLE_GRPC_PORT: "0",
        PASSERELLE_DATA_DIR: dir,
        PASSERELLE_BOOTSTRAP_ADMIN_KEY: KEY,
        PASSERELLE_MODELS_FILE: path.join(dir, "models.yaml"),
        PASSERELLE_LOG_LEVEL: opts.logLevel,
      },
      stdio: ["ignore", out.fd, "inherit"],
    },
  );
  await out.close();
  let exited: number | null = null;
  child.once("exit", (code) => {
    exited = code ?? -1;
  });
  const deadline = Date.now() + 90_000;
  let url: string | undefined;
  while (!url) {
    if (exited !== null) throw new Error(`bench: the worker pool exited (${exited})`);
    if (Date.now() > deadline) throw new Error("bench: the worker pool did not start within 90 s");
    await new Promise((r) => setTimeout(r, 200));
    const text = await fs.readFile(logFile, "utf8");
    url = /REST \(OpenAI-compatible\)\s+(\S+)\/v1/.exec(text)?.[1];
  }
  const pids = () => {
    try {
      const kids = execFileSync("pgrep", ["-P", String(child.pid)], { encoding: "utf8" })
        .trim()
        .split("\n");
      return [child.pid as number, ...kids.filter(Boolean).map(Number)];
    } catch {
      return [child.pid as number];
    }
  };
  // From here on its output only grows the file: truncate it now and then, so a long bench does not fill the disk.
  const trim = setInterval(() => void fs.truncate(logFile, 0).catch(() => {}), 5_000);
  trim.unref();
  return {
    target: makeTarget("passerelle", url, KEY, opts.model),
    pids,
    async stop() {
      clearInterval(trim);
      if (exited === null) {
        const gone = once(child, "exit");
        child.kill("SIGTERM");
        await gone;
      }
      await db.drop();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

type Path = "direct" | "single" | "pool";

/** c=32 throughput of one process vs the pool, interleaved; CPU and RSS of the pool summed over its processes. */
export async function runPool(
  targets: Record<Path, Target>,
  pool: Pool,
  singlePid: number,
  plan: { rounds: number; roundMs: number },
) {
  const runs: Record<Path, LoadRun[]> = { direct: [], single: [], pool: [] };
  const cpu: Record<Path, number> = { direct: 0, single: 0, pool: 0 };
  const paths: Path[] = ["direct", "single", "pool"];
  let poolPeakMiB = 0;
  for (let r = 0; r < plan.rounds; r++) {
    for (const p of [...paths.slice(r % 3), ...paths.slice(0, r % 3)]) {
      const pids = p === "pool" ? pool.pids() : p === "single" ? [singlePid] : [];
      const before = pids.reduce((a, pid) => a + processCpuMs(pid), 0);
      runs[p].push(await closedLoop(targets[p], { connections: 32, durationMs: plan.roundMs }));
      cpu[p] += pids.reduce((a, pid) => a + processCpuMs(pid), 0) - before;
      if (p === "pool") poolPeakMiB = Math.max(poolPeakMiB, sumRss(pool.pids()));
    }
  }
  const stat = (p: Path) => {
    const ok = runs[p].reduce((a, x) => a + x.latencies.length, 0);
    const ms = runs[p].reduce((a, x) => a + x.elapsedMs, 0);
    return {
      rps: (1000 * ok) / ms,
      p99: summarize(runs[p].flatMap((x) => x.latencies)).p99,
      errors: runs[p].reduce((a, x) => a + x.errors, 0),
      cpuMsPerRequest: ok ? cpu[p] / ok : Number.NaN,
      cores: cpu[p] / ms,
    };
  };
  const s = { direct: stat("direct"), single: stat("single"), pool: stat("pool") };
  const rows = paths.map((p) => ({
    path: p === "pool" ? `passerelle ×${pool.pids().length - 1} workers` : p === "single" ? "passerelle ×1" : "direct",
    "req/s": Math.round(s[p].rps),
    "vs direct": times(s[p].rps, s.direct.rps),
    "vs ×1": p === "direct" ? "—" : times(s[p].rps, s.single.rps),
    "p99 ms": fx(s[p].p99, 2),
    errors: s[p].errors,
    "proxy CPU ms/req": p === "direct" ? "—" : fx(s[p].cpuMsPerRequest, 3),
    "proxy cores": p === "direct" ? "—" : fx(s[p].cores, 2),
  }));
  return { rows, figures: { ...s, poolPeakRssMiB: poolPeakMiB, poolIdleRssMiB: undefined as number | undefined } };
}

export function sumRss(pids: number[]): number {
  return pids.reduce((a, pid) => a + processRss(pid).rssMiB, 0);
}

/**
 * `n` concurrent streams through the pool vs direct, interleaved (the simulator already pacing its tokens): what
 * one process's single core limits at 64 streams (the time to first byte of the last streams opened, frames held
 * and sent together) with every core in use, as for throughput. The pool is warmed first: each worker compiles its
 * own stream path. Frames are checked against `reference` as the single-process rows are.
 */
export async function runPoolStreams(
  targets: { direct: Target; pool: Target },
  pool: Pool,
  reference: readonly Frame[],
  plan: { rounds: number; warmBatches: number; streams: number },
) {
  type P = "direct" | "pool";
  for (let i = 0; i < plan.warmBatches; i++) await streams(targets.pool, plan.streams);
  const recs: Record<P, StreamRecord[]> = { direct: [], pool: [] };
  let poolCpuMs = 0;
  let poolWallMs = 0;
  for (let r = 0; r < plan.rounds; r++) {
    for (const p of (r % 2 === 0 ? ["direct", "pool"] : ["pool", "direct"]) as P[]) {
      const pids = p === "pool" ? pool.pids() : [];
      const cpu0 = pids.reduce((a, pid) => a + processCpuMs(pid), 0);
      const t0 = performance.now();
      recs[p].push(...(await streams(targets[p], plan.streams)));
      if (p === "pool") {
        poolWallMs += performance.now() - t0;
        poolCpuMs += pids.reduce((a, pid) => a + processCpuMs(pid), 0) - cpu0;
      }
    }
  }
  const s = { direct: streamOutcome(recs.direct, reference), pool: streamOutcome(recs.pool, reference) };
  const workers = pool.pids().length - 1;
  const rows = (["direct", "pool"] as P[]).map((p) => {
    const x = s[p];
    const d = s.direct;
    return {
      path: p === "pool" ? `passerelle ×${workers} workers` : "direct",
      streams: x.fidelity.streams,
      "TTFB p50 ms": fx(x.ttfb.p50, 2),
      "TTFB p99 ms": fx(x.ttfb.p99, 2),
      "added TTFB p50/p99 ms": addedPair(x.ttfb, d.ttfb, p === "direct"),
      "added total p50/p99 ms": addedPair(x.total, d.total, p === "direct", 1),
      ...frameColumns(x.fidelity),
      "proxy cores": p === "direct" ? "—" : fx(poolCpuMs / poolWallMs, 2),
    };
  });
  return { rows, figures: { workers, ...s, poolCores: poolCpuMs / poolWallMs } };
}
