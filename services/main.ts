import cluster from "node:cluster";
import { ConfigError, loadConfig } from "./config.js";
import { createLogger } from "./platform/logging.js";

/**
 * `npm start`: the whole platform in one process (core services + REST bridge), or with PASSERELLE_WORKERS > 1 a
 * primary and that many such processes sharing the ports (services/workers.ts). The composition root: the only
 * file that knows both the services and the bridge, which it hands the in-process Transport.
 */
async function main(): Promise<void> {
  const started = performance.now();
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`passerelle: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  const pooled = config.workers > 1;
  // The platform is imported only where it runs: a pool's primary forks and supervises, nothing more.
  const load = async () => {
    const [{ bridgePlugin }, { startPlatform }] = await Promise.all([
      import("../bridge/app.js"),
      import("./server.js"),
    ]);
    return { restApi: bridgePlugin, startPlatform };
  };
  if (cluster.isWorker && process.env.PASSERELLE_POOL_TASK) {
    const { runPoolTask } = await import("./workers.js");
    await runPoolTask(config, logger);
    process.exit(0);
  }
  if (pooled && cluster.isWorker) {
    // A SIGTERM while starting (the pool stopping early) is honoured once started: a clean close, journal flushed.
    let early = false;
    const onEarly = () => {
      early = true;
    };
    process.on("SIGTERM", onEarly);
    const { restApi, startPlatform } = await load();
    const platform = await startPlatform(config, logger, { restApi });
    (await import("./workers.js")).reportListening(platform.httpUrl, platform.grpcUrl);
    logger.info({ worker: config.workerIndex, pid: process.pid }, "worker listening");
    // Ctrl-C reaches the whole process group: the primary relays it as SIGTERM, once.
    process.on("SIGINT", () => {});
    // From here to the handler, synchronously: no SIGTERM can fall between the two.
    process.off("SIGTERM", onEarly);
    const stop = handleSignals(logger, config.shutdownGraceMs, () => platform.close(), ["SIGTERM"]);
    // The primary gone (killed hard), or the channel closed while draining: stop (once) rather than serve alone.
    process.once("disconnect", () => stop("disconnect", false));
    if (early) stop("SIGTERM");
    return;
  }
  // On PostgreSQL with migrations pending (a first start, an upgrade), one process prepares the database and exits,
  // as a pool's primary has it done: migrating loads MikroORM, which this process would otherwise keep for good
  // although serving never needs it (services/platform/db/database.ts).
  const prepared =
    !pooled && config.databaseUrl && (await migrationsPending(config.databaseUrl))
      ? await (await import("./workers.js")).runTask("setup")
      : undefined;
  const platform = pooled
    ? await (await import("./workers.js")).startWorkerPool(config, logger)
    : await (async () => {
        const { restApi, startPlatform } = await load();
        return startPlatform(config, logger, { restApi });
      })();
  const ms = Math.round(performance.now() - started);
  const bootstrap = prepared?.created ? prepared : "core" in platform ? platform.core.bootstrap : platform.bootstrap;
  // A pool always runs on PostgreSQL and Redis (config.ts refuses it otherwise).
  const db = "core" in platform ? platform.core.db.kind : "postgresql";
  const kv = "core" in platform ? platform.core.kv.kind : "redis";

  // The banner goes to stdout once, outside the logger: it is the only place a generated admin key ever appears.
  const lines = [
    "",
    `Passerelle is up in ${ms} ms`,
    `  REST (OpenAI-compatible)  ${platform.httpUrl}/v1      docs: ${platform.httpUrl}/docs`,
    `  Connect + gRPC-web        ${platform.httpUrl}`,
    `  gRPC (h2c)                ${platform.grpcUrl}`,
    `  Database                  ${db === "embedded" ? `embedded PostgreSQL in ${config.dataDir}/pg` : "PostgreSQL (DATABASE_URL)"}`,
    `  Key-value store           ${kv === "redis" ? "Redis (REDIS_URL)" : "in-process (set REDIS_URL for several processes)"}`,
    `  Processes                 ${pooled ? `${config.workers} workers (PASSERELLE_WORKERS) and this primary` : "1 (PASSERELLE_WORKERS for more)"}`,
  ];
  if (bootstrap.generatedKey) {
    lines.push(
      "",
      `  First start: created the admin user ${bootstrap.email} and this admin API key, shown only now:`,
      "",
      `      ${bootstrap.generatedKey}`,
      "",
      "  Store it safely; it is kept only as a hash. Try: curl -H 'Authorization: Bearer <key>' " +
        `${platform.httpUrl}/v1/me`,
    );
  } else {
    lines.push(
      "",
      `  Admin: ${bootstrap.email}. Its key was printed on first start (or set PASSERELLE_BOOTSTRAP_ADMIN_KEY);`,
      `  a new one: npm run admin -- create-key --email ${bootstrap.email}`,
    );
  }
  // Signals are handled before the banner announces the process: a SIGTERM sent as soon as it is up closes it
  // gracefully (journal flushed) rather than ending it by default.
  handleSignals(logger, config.shutdownGraceMs, () => platform.close());
  process.stdout.write(`${lines.join("\n")}\n\n`);
  logger.info({ http: platform.httpUrl, grpc: platform.grpcUrl, startupMs: ms }, "listening");
}

/** Whether the database at `url` has committed migrations not applied yet (one query; a pool of one connection). */
async function migrationsPending(url: string): Promise<boolean> {
  const [{ default: pg }, { pendingMigrations }] = await Promise.all([
    import("pg"),
    import("./platform/db/database.js"),
  ]);
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  pool.on("error", () => undefined);
  try {
    return (await pendingMigrations(pool)).length > 0;
  } finally {
    await pool.end();
  }
}

/** SIGTERM / SIGINT: drain and exit 0; a second signal exits at once. */
function handleSignals(
  logger: ReturnType<typeof createLogger>,
  graceMs: number,
  close: () => Promise<void>,
  signals: readonly NodeJS.Signals[] = ["SIGTERM", "SIGINT"],
): (why: string, forceOnRepeat?: boolean) => void {
  let stopping = false;
  const stop = (signal: string, forceOnRepeat = true) => {
    if (stopping) {
      if (!forceOnRepeat) return;
      logger.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal, graceMs }, "shutting down");
    close().then(
      () => {
        logger.info("stopped");
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, "unclean shutdown");
        process.exit(1);
      },
    );
  };
  for (const signal of signals) process.on(signal, () => stop(signal));
  return stop;
}

main().catch((err: unknown) => {
  process.stderr.write(
    `passerelle: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
