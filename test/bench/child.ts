import fs from "node:fs/promises";
import type { Session } from "node:inspector/promises";
import os from "node:os";
import path from "node:path";
import type { SimulatorOptions } from "../upstream/types.js";
import type { ChildRole } from "./children.js";
import type { GcTally } from "./gc.js";

/**
 * One of the bench's server processes (see children.ts): `simulator`, `passerelle` (the whole platform, as
 * test/support/platform.ts starts it: real sockets, a fresh database on PASSERELLE_TEST_DATABASE_URL, auth on) or
 * `ceiling` (the pass-through proxy) or `floor` (floors-server.ts). Started by the parent with a `start` message, answers its requests. Each
 * role imports only what it runs (dynamic imports), so that a process's memory is its own role's.
 */

export interface PasserelleChildConfig {
  upstreamUrl: string;
  upstreamKey: string;
  /** The public model name the bench asks for. */
  model: string;
  upstreamModel: string;
  /** Limits in Redis (PASSERELLE_TEST_REDIS_URL) rather than in-process. */
  redis?: boolean;
  /** Keep the database on close, for a later start with `prepared` (see startTestPlatform). */
  keepDatabase?: boolean;
  /** Start on a database a previous start prepared, as a deployment restarts (nothing to migrate or create). */
  prepared?: { databaseUrl: string; adminKey: string };
}

export interface PasserelleInfo {
  httpUrl: string;
  adminKey: string;
  databaseUrl: string;
}

type Handler = (payload: unknown) => Promise<unknown>;

const role = process.argv[2] as ChildRole;

function send(msg: unknown): void {
  process.send?.(msg);
}

async function start(config: unknown): Promise<{ info: unknown; handlers: Record<string, Handler> }> {
  switch (role) {
    case "simulator": {
      const { startSimulator } = await import("../upstream/simulator.js");
      const sim = await startSimulator(config as Partial<SimulatorOptions>);
      return {
        info: { url: sim.url },
        handlers: {
          setOptions: async (p) => sim.setOptions(p as Partial<SimulatorOptions>),
          stats: async () => ({ ...sim.stats, lastRequest: undefined, lastHeaders: undefined }),
          close: () => sim.close(),
        },
      };
    }
    case "ceiling": {
      const { startCeilingProxy } = await import("./proxy-ceiling.js");
      const proxy = await startCeilingProxy((config as { upstreamUrl: string }).upstreamUrl);
      return { info: { url: proxy.url }, handlers: { close: () => proxy.close() } };
    }
    case "floor": {
      const { startFloor } = await import("./floors-server.js");
      const floor = await startFloor(config as import("./floors-server.js").FloorConfig);
      return { info: { url: floor.url }, handlers: { close: () => floor.close() } };
    }
    case "passerelle": {
      const c = config as PasserelleChildConfig;
      const { startTestPlatform } = await import("../support/platform.js");
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-bench-models-"));
      const file = path.join(dir, "models.yaml");
      // max_concurrency 0: no gateway-side cap, so that the concurrency steps measure the gateway, not a limit.
      await fs.writeFile(
        file,
        `models:\n  - name: ${c.model}\n    type: text-generation\n` +
          "    costs: { prompt_tokens: 0.1, completion_tokens: 0.3 }\n    providers:\n" +
          `      - { type: vllm, url: "${c.upstreamUrl}", key: ${c.upstreamKey}, model_name: ${c.upstreamModel}, ` +
          "timeout_s: 120, max_concurrency: 0 }\n",
      );
      const t = await startTestPlatform({
        redis: c.redis === true,
        // As npm start: compacted once started, so that idle RSS is what a deployment keeps.
        // The platform reads only the env it is given: a PASSERELLE_* setting of the bench's own environment (not
        // the test harness's PASSERELLE_TEST_*) reaches it, so that a setting can be compared run against run.
        env: {
          ...Object.fromEntries(
            Object.entries(process.env).filter(
              (e): e is [string, string] =>
                e[0].startsWith("PASSERELLE_") && !e[0].startsWith("PASSERELLE_TEST_") && e[1] !== undefined,
            ),
          ),
          PASSERELLE_MODELS_FILE: file,
          PASSERELLE_COMPACT_AFTER_START: "1",
        },
        keepDatabase: c.keepDatabase,
        prepared: c.prepared,
      });
      const gcTally = await tallyCollections();
      let session: Session | undefined;
      /** One inspector phase: `begin` posts what starts it; `stop` ends it and writes what it returns to `file`. */
      const phase = (what: string, begin: (s: Session) => Promise<unknown>, stop: string): Record<string, Handler> => ({
        [`${what}-start`]: async () => {
          const { Session } = await import("node:inspector/promises");
          session = new Session();
          session.connect();
          await begin(session);
        },
        [`${what}-stop`]: async (p) => {
          if (!session) throw new Error(`no ${what} running`);
          const { profile } = (await session.post(stop as never)) as unknown as { profile: unknown };
          session.disconnect();
          session = undefined;
          await fs.writeFile((p as { file: string }).file, JSON.stringify(profile));
        },
      });
      return {
        info: { httpUrl: t.httpUrl, adminKey: t.adminKey, databaseUrl: t.databaseUrl } satisfies PasserelleInfo,
        handlers: {
          // The same V8 sampling profiler as `node --cpu-prof`, but started and stopped around one phase only.
          ...phase(
            "profile",
            async (s) => {
              await s.post("Profiler.enable");
              await s.post("Profiler.setSamplingInterval", {
                interval: Number(process.env.BENCH_PROFILE_INTERVAL_US ?? 200),
              });
              await s.post("Profiler.start");
            },
            "Profiler.stop",
          ),
          // Allocation sampling (V8's sampling heap profiler) for memory investigations; BENCH_HEAP_MINOR=0 keeps
          // only what outlived the young generation.
          ...phase(
            "heap-sample",
            async (s) => {
              await s.post("HeapProfiler.enable");
              await s.post("HeapProfiler.startSampling", {
                samplingInterval: 4096,
                includeObjectsCollectedByMajorGC: true,
                includeObjectsCollectedByMinorGC: process.env.BENCH_HEAP_MINOR !== "0",
              });
            },
            "HeapProfiler.stopSampling",
          ),
          // Waits until the usage journal is empty (every record written to PostgreSQL), or `timeoutMs` passed.
          "usage-drained": async (p) => {
            const { timeoutMs = 60_000 } = (p ?? {}) as { timeoutMs?: number };
            const gauge = t.platform.core.metrics.registry.getSingleMetric("passerelle_usage_buffer_depth");
            if (!gauge) throw new Error("no passerelle_usage_buffer_depth gauge");
            const depth = async () => (await gauge.get()).values[0]?.value ?? 0;
            const started = performance.now();
            let d = await depth();
            while (d > 0 && performance.now() - started < timeoutMs) {
              await new Promise((r) => setTimeout(r, 50));
              d = await depth();
            }
            return { depth: d, waitedMs: performance.now() - started };
          },
          // V8's collections since the previous call: count and pause time by kind (see tallyCollections).
          "gc-take": async () => gcTally(),
          // process.memoryUsage() as it is (no collection): what the heap holds at a given moment under load.
          usage: async () => process.memoryUsage(),
          // Where the memory is: V8's heap spaces after a full collection, and process.memoryUsage().
          // With `file`, also a heap snapshot written there.
          memory: async (p) => {
            const { Session } = await import("node:inspector/promises");
            const v8 = await import("node:v8");
            const s = new Session();
            s.connect();
            await s.post("HeapProfiler.collectGarbage");
            s.disconnect();
            const file = (p as { file?: string } | undefined)?.file;
            if (file) v8.writeHeapSnapshot(file);
            const spaces = Object.fromEntries(
              v8
                .getHeapSpaceStatistics()
                .map((x) => [
                  x.space_name,
                  { usedKiB: x.space_used_size >> 10, committedKiB: x.physical_space_size >> 10 },
                ]),
            );
            return {
              usage: process.memoryUsage(),
              spaces,
              code: v8.getHeapCodeStatistics(),
              ormLoaded: t.platform.core.db.ormLoaded,
            };
          },
          close: async () => {
            await t.close();
            await fs.rm(dir, { recursive: true, force: true });
          },
        },
      };
    }
    default:
      throw new Error(`unknown role ${String(role)}`);
  }
}

/**
 * Observes V8's collections in this process (perf_hooks `gc` entries: the main thread's pause for each). A major
 * collection stops the event loop for several milliseconds, long enough for a stream's frames to arrive bunched:
 * the stream sections report how many fell inside Passerelle's batches, so that a figure moved by one of them reads as such.
 */
async function tallyCollections(): Promise<() => GcTally> {
  const { PerformanceObserver, constants } = await import("node:perf_hooks");
  const { emptyGcTally } = await import("./gc.js");
  let tally = emptyGcTally();
  const kinds: Record<number, keyof GcTally> = {
    [constants.NODE_PERFORMANCE_GC_MINOR]: "scavenge",
    [constants.NODE_PERFORMANCE_GC_MAJOR]: "major",
    [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: "incremental",
    [constants.NODE_PERFORMANCE_GC_WEAKCB]: "weak",
  };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = kinds[(e as { detail?: { kind?: number } }).detail?.kind ?? -1];
      if (!kind) continue;
      const t = tally[kind];
      t.count++;
      t.ms += e.duration;
      t.maxMs = Math.max(t.maxMs, e.duration);
    }
  }).observe({ entryTypes: ["gc"] });
  /** What was collected since the previous call, which starts a new window. */
  return () => {
    const window = tally;
    tally = emptyGcTally();
    return window;
  };
}

process.once("message", (msg: { type: string; config: unknown }) => {
  if (msg.type !== "start") return;
  start(msg.config).then(
    ({ info, handlers }) => {
      process.on("message", (req: { id: number; type: string; payload: unknown }) => {
        const h = handlers[req.type];
        const done = h ? h(req.payload) : Promise.reject(new Error(`unknown request ${req.type}`));
        done.then(
          (result) => {
            send({ id: req.id, ok: true, result });
            if (req.type === "close") process.disconnect?.();
          },
          (err: unknown) => send({ id: req.id, ok: false, error: String((err as Error)?.message ?? err) }),
        );
      });
      send({ type: "ready", info });
    },
    (err: unknown) => {
      send({ type: "failed", error: String((err as Error)?.stack ?? err) });
      process.exitCode = 1;
      process.disconnect?.();
    },
  );
});

// The parent gone (or done with us): leave, even if a socket or timer would keep the loop alive.
process.on("disconnect", () => {
  setTimeout(() => process.exit(process.exitCode ?? 0), 100).unref();
});
