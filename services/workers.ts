import cluster, { type Worker } from "node:cluster";
import type { Logger } from "pino";
import type { BootstrapResult } from "./accounts/index.js";
import type { CoreConfig } from "./config.js";

/** What a worker tells the primary once it listens. */
export interface WorkerListening {
  type: "listening";
  httpUrl: string;
  grpcUrl: string;
}

/**
 * A pool's one-off task, run in a process of its own (PASSERELLE_POOL_TASK): `setup` prepares the database before
 * the workers start, `replay` writes what stopped workers left in their journals.
 */
export type PoolTask = "setup" | "replay";

interface TaskDone {
  type: "task-done";
  bootstrap: BootstrapResult;
}

export interface WorkerPool {
  httpUrl: string;
  grpcUrl: string;
  bootstrap: BootstrapResult;
  pids(): number[];
  /** Sends SIGTERM to every worker (each drains its requests) and resolves when all have exited. */
  close(): Promise<void>;
}

const RESPAWN_DELAY_MS = 1_000;

/**
 * The primary of `PASSERELLE_WORKERS` > 1. It prepares the database once (migrations, bootstrap admin, models file,
 * and the usage journals earlier workers left), then forks the workers. Each worker is the whole one-process
 * platform; they share the HTTP and gRPC ports (the primary hands connections out in turn) and all their state
 * through PostgreSQL and Redis. A worker that dies unexpectedly is replaced with the same index, so that it replays
 * its own usage journal.
 */
export async function startWorkerPool(config: CoreConfig, logger: Logger): Promise<WorkerPool> {
  const bootstrap = await runTask("setup");

  let stopping = false;
  const byIndex = new Map<number, Worker>();
  let resolveReady: (v: WorkerListening) => void = () => {};
  let rejectReady: (e: Error) => void = () => {};
  const ready = new Promise<WorkerListening>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  let listening = 0;
  let first: WorkerListening | undefined;

  const spawn = (index: number) => {
    const worker = cluster.fork({ PASSERELLE_WORKER_INDEX: String(index) });
    byIndex.set(index, worker);
    worker.on("message", (msg: WorkerListening) => {
      if (msg?.type !== "listening") return;
      first ??= msg;
      if (++listening === config.workers) resolveReady(first);
    });
    worker.once("exit", (code, signal) => {
      if (byIndex.get(index) === worker) byIndex.delete(index);
      if (stopping) return;
      if (listening < config.workers) {
        rejectReady(new Error(`worker ${index} exited during start-up (${signal ?? code})`));
        return;
      }
      logger.error({ worker: index, code, signal }, "worker exited; starting a new one");
      setTimeout(() => {
        if (!stopping) spawn(index);
      }, RESPAWN_DELAY_MS).unref();
    });
  };

  const stopAll = async () => {
    if (stopping) return;
    stopping = true;
    const workers = [...byIndex.values()];
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.isDead()) return resolve();
            const kill = setTimeout(() => w.process.kill("SIGKILL"), config.shutdownGraceMs + 5_000);
            w.once("exit", () => {
              clearTimeout(kill);
              resolve();
            });
            w.process.kill("SIGTERM");
          }),
      ),
    );
  };

  for (let i = 0; i < config.workers; i++) spawn(i);
  let urls: WorkerListening;
  try {
    urls = await ready;
  } catch (err) {
    await stopAll();
    throw err;
  }
  return {
    httpUrl: urls.httpUrl,
    grpcUrl: urls.grpcUrl,
    bootstrap,
    pids: () => [...byIndex.values()].map((w) => w.process.pid as number),
    async close() {
      await stopAll();
      // What a worker could not write before it stopped (one killed while starting, a flush that failed) is
      // written now, as at the next start: opening a core replays every worker's journal.
      await runTask("replay");
    },
  };
}

/**
 * Runs a pool task in a forked process and resolves with what it reports (also used by a single process whose
 * database has migrations pending: see main.ts). The primary itself never loads the
 * platform: it only forks and supervises, and weighs what a bare Node process does (~45 MiB) instead of a whole
 * platform's modules and start-up garbage (~150 MiB) for as long as the pool runs.
 */
export function runTask(task: PoolTask): Promise<BootstrapResult> {
  return new Promise((resolve, reject) => {
    const child = cluster.fork({ PASSERELLE_POOL_TASK: task });
    let done: TaskDone | undefined;
    child.on("message", (msg: TaskDone) => {
      if (msg?.type === "task-done") done = msg;
    });
    child.once("exit", (code, signal) => {
      if (code === 0 && done) resolve(done.bootstrap);
      else reject(new Error(`the pool's ${task} process failed (${signal ?? `exit code ${code}`})`));
    });
  });
}

/** In a task process (see runTask): opens the core, which migrates, bootstraps and replays journals, then closes it. */
export async function runPoolTask(config: CoreConfig, logger: Logger): Promise<void> {
  const { createCore } = await import("./core.js");
  const core = await createCore(config, logger);
  try {
    const msg: TaskDone = { type: "task-done", bootstrap: core.bootstrap };
    await new Promise<void>((resolve, reject) =>
      process.send ? process.send(msg, undefined, {}, (err) => (err ? reject(err) : resolve())) : resolve(),
    );
  } finally {
    await core.close();
  }
}

/** In a worker: tells the primary where it listens. */
export function reportListening(httpUrl: string, grpcUrl: string): void {
  process.send?.({ type: "listening", httpUrl, grpcUrl } satisfies WorkerListening);
}
