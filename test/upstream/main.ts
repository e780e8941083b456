import cluster from "node:cluster";
import { parseArgs } from "node:util";
import { type Simulator, startSimulator } from "./simulator.js";
import { defaultOptions, type SimulatorOptions } from "./types.js";

/**
 * Dev server: `npm run upstream -- --port 8001 --ttft 50 --itl 10 --instances 3` starts that many simulators on
 * consecutive ports and prints their URLs; SIGINT/SIGTERM close them.
 */

const USAGE = `usage: npm run upstream -- [options]
  --port N            first port (default 8001); instance i listens on port + i (0: free ports)
  --host H            bind address (default 127.0.0.1)
  --instances N       how many simulators (default 1)
  --ttft MS           time to first token (default 0)
  --itl MS            inter-token latency (default 0)
  --tokens N          tokens generated when nothing stops earlier (default 16)
  --failure-rate R    0..1, share of requests failing at once (default 0)
  --failure-status S  status of those failures (default 500)
  --ping MS           send ': ping' SSE comments this often
  --api-key KEY       require 'Authorization: Bearer KEY' on /v1/*
  --dimensions N      embedding vector size (default 384)
  --max-num-seqs N    concurrent generations before requests wait (default 256)
  --legacy-errors     flat error bodies of vLLM < 0.10.1
  --workers N         processes per instance sharing its port (needs --port; counters are then per process)
  --help`;

function num(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got '${value}'`);
  return n;
}

function optionsFromArgs(args: string[]): {
  first: number;
  instances: number;
  workers: number;
  opts: Partial<SimulatorOptions>;
} {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: "string" },
      host: { type: "string" },
      instances: { type: "string" },
      ttft: { type: "string" },
      itl: { type: "string" },
      tokens: { type: "string" },
      "failure-rate": { type: "string" },
      "failure-status": { type: "string" },
      ping: { type: "string" },
      "api-key": { type: "string" },
      dimensions: { type: "string" },
      "max-num-seqs": { type: "string" },
      "legacy-errors": { type: "boolean" },
      workers: { type: "string" },
      help: { type: "boolean" },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const opts: Partial<SimulatorOptions> = {};
  const set = <K extends keyof SimulatorOptions>(k: K, v: SimulatorOptions[K] | undefined) => {
    if (v !== undefined) opts[k] = v;
  };
  set("host", values.host);
  set("ttftMs", num(values.ttft, "ttft"));
  set("interTokenMs", num(values.itl, "itl"));
  set("completionTokens", num(values.tokens, "tokens"));
  set("failureRate", num(values["failure-rate"], "failure-rate"));
  set("failureStatus", num(values["failure-status"], "failure-status"));
  set("pingEveryMs", num(values.ping, "ping"));
  set("apiKey", values["api-key"]);
  set("embeddingDimensions", num(values.dimensions, "dimensions"));
  set("maxNumSeqs", num(values["max-num-seqs"], "max-num-seqs"));
  if (values["legacy-errors"]) opts.errorShape = "legacy";
  return {
    first: num(values.port, "port") ?? 8001,
    instances: Math.max(1, num(values.instances, "instances") ?? 1),
    workers: Math.max(1, num(values.workers, "workers") ?? 1),
    opts,
  };
}

type Parsed = ReturnType<typeof optionsFromArgs>;

const portOf = (p: Parsed, instance: number) => (p.first === 0 ? 0 : p.first + instance);

function header(p: Parsed, count: number): string {
  const o = { ...defaultOptions(), ...p.opts };
  return (
    `vLLM simulator: ${count} instance(s)${p.workers > 1 ? ` × ${p.workers} worker processes` : ""}, ` +
    `models ${o.models.map((m) => m.id).join(", ")}, ttft ${o.ttftMs} ms, itl ${o.interTokenMs} ms`
  );
}

/** One process serving every instance. */
async function single(p: Parsed): Promise<void> {
  const sims: Simulator[] = [];
  const closeAll = async () => {
    await Promise.all(sims.map((s) => s.close()));
  };
  try {
    for (let i = 0; i < p.instances; i++) sims.push(await startSimulator({ ...p.opts, port: portOf(p, i) }));
  } catch (err) {
    console.error(`could not start: ${(err as Error).message}`);
    await closeAll();
    process.exit(1);
  }
  console.log(header(p, sims.length));
  for (const s of sims) console.log(s.url);
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: closing`);
    void closeAll().then(() => process.exit(0));
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

/**
 * `--workers N`: each instance's port served by N processes (node:cluster shares the listening socket), for
 * benchmarks where one simulator process would be the bottleneck (a stream frame costs about one write syscall).
 * Counters, options and `/metrics` are then per process.
 */
function primary(p: Parsed): void {
  const urls = new Map<number, string>();
  let ready = 0;
  let stopping = false;
  for (let i = 0; i < p.instances; i++) {
    for (let w = 0; w < p.workers; w++) cluster.fork({ PASSERELLE_SIM_INSTANCE: String(i) });
  }
  cluster.on("message", (_worker, msg: { instance: number; url: string }) => {
    urls.set(msg.instance, msg.url);
    if (++ready < p.instances * p.workers) return;
    console.log(header(p, p.instances));
    for (const url of [...urls.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1])) console.log(url);
  });
  const stop = (signal: NodeJS.Signals | "worker exit") => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: closing`);
    for (const w of Object.values(cluster.workers ?? {})) w?.kill("SIGTERM");
  };
  cluster.on("exit", (worker, code) => {
    if (!stopping) {
      console.error(`worker ${worker.process.pid} exited with ${code}`);
      process.exitCode = 1;
      stop("worker exit");
    }
    if (Object.keys(cluster.workers ?? {}).length === 0) process.exit();
  });
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

async function worker(p: Parsed): Promise<void> {
  const instance = Number(process.env.PASSERELLE_SIM_INSTANCE ?? 0);
  const sim = await startSimulator({ ...p.opts, port: portOf(p, instance) });
  process.send?.({ instance, url: sim.url });
  const stop = () => void sim.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

async function main(): Promise<void> {
  let parsed: Parsed;
  try {
    parsed = optionsFromArgs(process.argv.slice(2));
    if (parsed.workers > 1 && parsed.first === 0) throw new Error("--workers needs a fixed --port");
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (parsed.workers <= 1) await single(parsed);
  else if (cluster.isPrimary) primary(parsed);
  else await worker(parsed);
}

await main();
