import cluster, { type Worker } from "node:cluster";
import type { Logger } from "pino";
import type { BootstrapResult } from "./accounts/index.js";
import type { CoreConfig } from "./config.js";
import { createCore } from "./core.js";

/** What a worker tells the primary once it listens. */
export interface WorkerListening {
  type: "listening";
  httpUrl: string;
  grpcUrl: string;
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
  const setup = await createCore(config, logger);
  const bootstrap = setup.bootstrap;
  await setup.close();

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
      const last = await createCore(config, logger);
      await last.close();
    },
  };
}

/** In a worker: tells the primary where it listens. */
export function reportListening(httpUrl: string, grpcUrl: string): void {
  process.send?.({ type: "listening", httpUrl, grpcUrl } satisfies WorkerListening);
}
