import type { EntitySchema } from "@mikro-orm/core";
import { Migrator } from "@mikro-orm/migrations";
import { MikroORM } from "@mikro-orm/postgresql";
import pg from "pg";
import type { Logger } from "pino";
import type { EmbeddedPostgres, PgEndpoint } from "./embedded.js";
import { migrations } from "./migrations/index.js";

export interface Database {
  readonly orm: MikroORM;
  /** "postgresql" (DATABASE_URL) or "embedded" (PGlite). */
  readonly kind: "postgresql" | "embedded";
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** Real server when set. */
  url?: string;
  /** Embedded PGlite is persisted here when `url` is unset. */
  dataDir: string;
  // biome-ignore lint/suspicious/noExplicitAny: MikroORM entity schemas are heterogeneous by nature
  entities: EntitySchema<any>[];
  logger?: Logger;
  poolMax?: number;
  /** Apply pending migrations (default true). */
  migrate?: boolean;
  /** Connect to an already running embedded server instead of starting one (the CLI). */
  endpoint?: PgEndpoint;
}

/** Opens PostgreSQL (real or embedded), runs the committed migrations, and returns the ORM. */
export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  const poolMax = opts.poolMax ?? 10;
  let embedded: EmbeddedPostgres | undefined;
  let connection: { clientUrl: string } | { host: string; port: number; user: string; dbName: string };
  if (opts.url) {
    connection = { clientUrl: opts.url };
  } else {
    // Loaded only when used: PGlite and its extensions weigh ~11 MiB that a real-PostgreSQL deployment never needs.
    if (!opts.endpoint) embedded = await (await import("./embedded.js")).startEmbeddedPostgres(opts.dataDir, poolMax);
    const endpoint = opts.endpoint ?? (embedded as EmbeddedPostgres).endpoint;
    connection = { host: endpoint.host, port: endpoint.port, user: "postgres", dbName: "postgres" };
  }
  let orm: MikroORM;
  try {
    orm = await MikroORM.init({
      ...connection,
      entities: opts.entities,
      extensions: [Migrator],
      pool: { min: 0, max: poolMax },
      migrations: {
        migrationsList: migrations,
        tableName: "passerelle_migrations",
        transactional: true,
        allOrNothing: true,
        snapshot: false,
      },
      allowGlobalContext: false,
      metadataCache: { enabled: false },
      debug: false,
      logger: (msg) => opts.logger?.debug({ orm: true }, msg),
    });
    if (opts.migrate ?? true) {
      if (opts.url) await migrateExclusively(opts.url, orm);
      else await orm.migrator.up();
    }
  } catch (err) {
    await embedded?.close();
    throw err;
  }
  return {
    orm,
    kind: embedded || opts.endpoint ? "embedded" : "postgresql",
    async ping() {
      await orm.em.fork().getConnection().execute("select 1");
    },
    async close() {
      await orm.close(true);
      await embedded?.close();
    },
  };
}

/** Advisory lock key ("passerelle migrations") serializing migrations between processes sharing a server. */
const MIGRATION_LOCK = 0x7061_7373_6d69;

/**
 * Runs the migrations while holding a session advisory lock on a dedicated connection, so that several processes
 * starting together on one database (replicas) migrate one after the other instead of racing on the same DDL.
 * The embedded database is never shared between processes and needs no lock.
 */
async function migrateExclusively(url: string, orm: MikroORM): Promise<void> {
  const lock = new pg.Client({ connectionString: url });
  lock.on("error", () => undefined);
  await lock.connect();
  try {
    await lock.query("select pg_advisory_lock($1)", [MIGRATION_LOCK]);
    await orm.migrator.up();
  } finally {
    // Ending the session releases the lock.
    await lock.end().catch(() => undefined);
  }
}
