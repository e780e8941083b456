import { bridgePlugin } from "../bridge/app.js";
import { ConfigError, loadConfig } from "./config.js";
import { createLogger } from "./platform/logging.js";
import { startPlatform } from "./server.js";

/**
 * `npm start`: the whole platform in one process (core services + REST bridge). The composition root: the only
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
  const platform = await startPlatform(config, logger, { restApi: bridgePlugin });
  const ms = Math.round(performance.now() - started);
  const { bootstrap, db, kv } = platform.core;

  // The banner goes to stdout once, outside the logger: it is the only place a generated admin key ever appears.
  const lines = [
    "",
    `Passerelle is up in ${ms} ms`,
    `  REST (OpenAI-compatible)  ${platform.httpUrl}/v1      docs: ${platform.httpUrl}/docs`,
    `  Connect + gRPC-web        ${platform.httpUrl}`,
    `  gRPC (h2c)                ${platform.grpcUrl}`,
    `  Database                  ${db.kind === "embedded" ? `embedded PostgreSQL in ${config.dataDir}/pg` : "PostgreSQL (DATABASE_URL)"}`,
    `  Key-value store           ${kv.kind === "redis" ? "Redis (REDIS_URL)" : "in-process (set REDIS_URL for several processes)"}`,
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
  process.stdout.write(`${lines.join("\n")}\n\n`);
  logger.info({ http: platform.httpUrl, grpc: platform.grpcUrl, startupMs: ms }, "listening");

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal, graceMs: config.shutdownGraceMs }, "shutting down");
    platform.close().then(
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
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
}

main().catch((err: unknown) => {
  process.stderr.write(
    `passerelle: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
