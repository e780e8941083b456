import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { bridgePlugin } from "../../bridge/app.js";
import { generateApiKey } from "../../services/accounts/secrets.js";
import { type CoreConfig, loadConfig } from "../../services/config.js";
import { createLogger } from "../../services/platform/logging.js";
import { type Platform, startPlatform } from "../../services/server.js";
import { createTestDatabase, existingTestDatabase, type TestDatabase } from "./db.js";
import { testRedisUrl } from "./env.js";

export interface TestPlatform {
  platform: Platform;
  /** The bootstrap admin's key. */
  adminKey: string;
  adminEmail: string;
  adminPassword: string;
  httpUrl: string;
  grpcUrl: string;
  /** The platform's database (dropped by `close` unless `keepDatabase`). */
  databaseUrl: string;
  close(): Promise<void>;
}

/**
 * The whole platform on real sockets (ports picked by the OS), on a fresh database of the test PostgreSQL and, when
 * `redis` is true, the test Redis.
 */
export async function startTestPlatform(
  opts: {
    redis?: boolean;
    env?: Record<string, string>;
    overrides?: Partial<CoreConfig>;
    /**
     * Start on a database a previous start prepared (migrated, bootstrapped with this admin key), as a deployment
     * restarts: the platform then finds nothing to migrate or create. Dropped by `close` unless `keepDatabase`.
     */
    prepared?: { databaseUrl: string; adminKey: string };
    /** Leave the database in place on `close` (for a later start with `prepared`). */
    keepDatabase?: boolean;
  } = {},
): Promise<TestPlatform> {
  const db: TestDatabase = opts.prepared
    ? existingTestDatabase(opts.prepared.databaseUrl)
    : await createTestDatabase("e2e");
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-test-"));
  const adminKey = opts.prepared?.adminKey ?? generateApiKey();
  const adminEmail = "admin@test.local";
  const adminPassword = "correct horse battery staple";
  const redisUrl = opts.redis ? testRedisUrl() : undefined;
  if (opts.redis && !redisUrl) throw new Error("this test needs PASSERELLE_TEST_REDIS_URL");
  const config = loadConfig(
    {
      PASSERELLE_HTTP_HOST: "127.0.0.1",
      PASSERELLE_HTTP_PORT: "0",
      PASSERELLE_GRPC_PORT: "0",
      PASSERELLE_DATA_DIR: dataDir,
      DATABASE_URL: db.url,
      ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
      PASSERELLE_BOOTSTRAP_ADMIN_EMAIL: adminEmail,
      PASSERELLE_BOOTSTRAP_ADMIN_PASSWORD: adminPassword,
      PASSERELLE_BOOTSTRAP_ADMIN_KEY: adminKey,
      PASSERELLE_SHUTDOWN_GRACE_MS: "2000",
      // Tests start hundreds of platforms; the bench (idle RSS) asks for the compaction npm start does.
      PASSERELLE_COMPACT_AFTER_START: "0",
      ...opts.env,
    },
    opts.overrides,
  );
  const logger = createLogger(process.env.PASSERELLE_TEST_LOG ?? "silent");
  let platform: Platform;
  try {
    platform = await startPlatform(config, logger, { restApi: bridgePlugin });
  } catch (err) {
    if (!opts.keepDatabase) await db.drop();
    throw err;
  }
  return {
    platform,
    adminKey,
    adminEmail,
    adminPassword,
    httpUrl: platform.httpUrl,
    grpcUrl: platform.grpcUrl,
    databaseUrl: db.url,
    async close() {
      await platform.close();
      if (!opts.keepDatabase) await db.drop();
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}
