import { readdir } from "node:fs/promises";
import path from "node:path";
import type pg from "pg";
import type { Logger } from "pino";
import { type BudgetStore, createBudgetStore } from "./budget-store.js";
import { createGovernor, type Governor, type GovernorDeps } from "./governor.js";
import type { DecisionOutcome, RateLimiter } from "./limiter/limiter.js";
import { createMemoryLimiter } from "./limiter/memory-limiter.js";
import { createResilientLimiter, type OutagePolicy } from "./limiter/resilient-limiter.js";
import { createUsageBuffer, type UsageBuffer } from "./usage-buffer.js";
import { createUsageStore, type UsageStore } from "./usage-store.js";

export type {
  Admission,
  AdmitInput,
  GovernedModel,
  Governor,
  Outcome,
  RefusalInput,
  ServedBy,
  Settled,
} from "./governor.js";
export { statusOf } from "./journal.js";
export { RATE_LIMIT_HEADERS } from "./limiter/headers.js";
export type { Limits } from "./limiter/limiter.js";

export interface GovernanceSettings {
  /** What the limiter does when Redis fails or is slow (PASSERELLE_LIMITS_REDIS_POLICY). */
  readonly limitsPolicy: OutagePolicy;
  /** Longest wait for Redis per decision before the policy applies (PASSERELLE_LIMITS_REDIS_TIMEOUT_MS). */
  readonly limitsTimeoutMs: number;
  /** Completion tokens reserved when the client set no max_tokens (PASSERELLE_DEFAULT_MAX_TOKENS). */
  readonly defaultMaxTokens: number;
  /** Budget leases (budget-leases.ts) instead of one reservation per request (PASSERELLE_BUDGET_LEASES, default on). */
  readonly budgetLeases?: boolean;
  /**
   * Calls sent upstream while their Redis reservation is decided, when their caller had ample room
   * (PASSERELLE_FORWARD_EARLY, default on; headroom.ts). Only with Redis: the in-process limiter answers at once.
   */
  readonly forwardEarly?: boolean;
  /** How long an owner in use stays remembered ahead of its cache expiry (PASSERELLE_CACHE_KEEP_WARM_SECONDS). */
  readonly cacheKeepWarmMs?: number;
}

export interface Governance {
  readonly governor: Governor;
  readonly settings: GovernanceSettings;
  readonly usageStore: UsageStore;
  readonly budgetStore: BudgetStore;
  readonly buffer: UsageBuffer;
  readonly limiter: RateLimiter;
  /** Flushes what it can of the usage journal (the rest is replayed at the next start) and closes the limiter. */
  close(): Promise<void>;
}

/**
 * Limits (Redis when `redisUrl` is set, with the configured outage policy; in-process otherwise), budgets, the
 * durable usage journal under `<dataDir>/usage`, and the governor that the model-facing services call.
 */
export async function setupGovernance(opts: {
  /** The platform's pool (Database.pool). */
  pool: pg.Pool;
  redisUrl: string | undefined;
  dataDir: string;
  /** A worker of several (config.workerIndex): its journal is `usage/worker-<n>`, as no two processes share one. */
  workerIndex?: number;
  /** Before starting, replay the journals other processes left (the primary of a worker pool, at start). */
  replayOthers?: boolean;
  /** A real PostgreSQL server's URL: budget reservations then run without a WAL flush each (see budget-store.ts). */
  databaseUrl?: string;
  settings: GovernanceSettings;
  logger: Logger;
  onDecision?: (outcome: DecisionOutcome) => void;
  onFinish?: GovernorDeps["onFinish"];
  onFlushed?: (records: number) => void;
  onFlushFailure?: () => void;
}): Promise<Governance> {
  const usageStore = createUsageStore(opts.pool);
  const budgetStore = createBudgetStore(opts.pool, {
    asyncCommitReservationsUrl: opts.databaseUrl,
    keepWarmMs: opts.settings.cacheKeepWarmMs,
    leases:
      opts.settings.budgetLeases === false
        ? undefined
        : { onError: (err, op) => opts.logger.warn({ err, op }, "budget lease operation failed") },
  });
  const root = path.join(opts.dataDir, "usage");
  if (opts.replayOthers) await replayWorkerJournals(root, usageStore, opts.logger);
  const buffer = await createUsageBuffer({
    dir: opts.workerIndex === undefined ? root : path.join(root, `worker-${opts.workerIndex}`),
    sink: (batch) => usageStore.writeBatch(batch),
    logger: opts.logger.child({ component: "usage-journal" }),
    onFlushed: opts.onFlushed,
    onFlushFailure: opts.onFlushFailure,
  });
  // Loaded only when used: ioredis weighs ~25 MB that the embedded default never needs.
  const redisModule = opts.redisUrl ? await import("./limiter/redis-limiter.js") : undefined;
  const redis = opts.redisUrl && redisModule ? await redisModule.createLimiterRedisClient(opts.redisUrl) : undefined;
  const limiter =
    redis && redisModule
      ? createResilientLimiter({
          primary: redisModule.createRedisLimiter({ redis }),
          policy: opts.settings.limitsPolicy,
          timeoutMs: opts.settings.limitsTimeoutMs,
          onDecision: opts.onDecision,
          onError: (err, op) => opts.logger.warn({ err, op }, "rate limiter store failed; outage policy applied"),
        })
      : createResilientLimiter({ primary: createMemoryLimiter(), policy: "fail-closed", onDecision: opts.onDecision });
  // Reservations of requests that never finished (a crash) are released after their TTL.
  const sweeper = setInterval(() => {
    budgetStore.sweepExpired().catch((err: unknown) => opts.logger.warn({ err }, "budget reservation sweep failed"));
  }, 60_000);
  sweeper.unref();
  const governor = createGovernor({
    limiter,
    budgets: budgetStore,
    buffer,
    logger: opts.logger,
    onFinish: opts.onFinish,
    forwardEarly: redis !== undefined && opts.settings.forwardEarly !== false,
  });
  return {
    governor,
    settings: opts.settings,
    usageStore,
    budgetStore,
    buffer,
    limiter,
    async close() {
      clearInterval(sweeper);
      await buffer.close();
      await budgetStore.close();
      await limiter.close();
      redis?.disconnect();
    },
  };
}

/**
 * Writes what workers of an earlier run left in their journals (a worker that crashed, or a pool that now has fewer
 * workers) before new workers start: each journal is replayed, flushed and closed in turn. Records are idempotent.
 */
async function replayWorkerJournals(root: string, usageStore: UsageStore, logger: Logger): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(root);
  } catch {
    return;
  }
  for (const name of entries.filter((e) => /^worker-\d+$/.test(e))) {
    let buffer: UsageBuffer;
    try {
      buffer = await createUsageBuffer({ dir: path.join(root, name), sink: (b) => usageStore.writeBatch(b), logger });
    } catch (err) {
      // Locked by a live process (a pool still running on this data directory): its own worker writes it.
      logger.warn({ err, journal: name }, "usage journal in use by another process; not replayed here");
      continue;
    }
    const empty = await buffer.flush();
    await buffer.close();
    if (!empty)
      logger.warn({ journal: name }, "usage journal not fully written; it is replayed again at the next start");
  }
}
