// First: MikroORM, when loaded, must find the synchronous context store (see the module); entities import it too.
import "./orm-context.js";
import type { EntitySchema } from "@mikro-orm/core";
import type { MikroORM } from "@mikro-orm/postgresql";
import pg from "pg";
import type { Logger } from "pino";
import { parse as parseArray } from "postgres-array";
import type { EmbeddedPostgres, PgEndpoint } from "./embedded.js";
import { once } from "./lazy.js";
import { MIGRATIONS_TABLE, migrationNames } from "./migrations/names.js";

/**
 * PostgreSQL for every domain: one `pg` pool that the serving path queries in plain SQL (bind parameters, one round
 * trip), and MikroORM over that same pool for the administrative CRUD, loaded on its first use.
 */
export interface Database {
  /** The pool: plain SQL for the hot paths (key lookup, model resolution, budgets, usage, search). */
  readonly pool: pg.Pool;
  /**
   * MikroORM over `pool`, loaded and initialised on the first call (an admin write, a start with migrations
   * pending); the same instance afterwards.
   */
  orm(): Promise<MikroORM>;
  /** Whether MikroORM is loaded or loading (a failed load is forgotten); the bench reports it at idle. */
  readonly ormLoaded: boolean;
  /** "postgresql" (DATABASE_URL) or "embedded" (PGlite). */
  readonly kind: "postgresql" | "embedded";
  ping(): Promise<void>;
  close(): Promise<void>;
}

// biome-ignore lint/suspicious/noExplicitAny: MikroORM entity schemas are heterogeneous by nature
type Entities = EntitySchema<any>[];

export interface DatabaseOptions {
  /** Real server when set. */
  url?: string;
  /** Embedded PGlite is persisted here when `url` is unset. */
  dataDir: string;
  /** The entities MikroORM maps, or a loader of them (the composition root imports them only when needed). */
  entities: Entities | (() => Promise<Entities>);
  logger?: Logger;
  poolMax?: number;
  /** Apply pending migrations (default true). */
  migrate?: boolean;
  /** Connect to an already running embedded server instead of starting one (the CLI). */
  endpoint?: PgEndpoint;
}

/**
 * The type parsers MikroORM's PostgreSQL driver installs on the pool it would create (@mikro-orm/sql's
 * createPostgreSqlTypeParsers): date, timestamp, timestamptz and interval, and their arrays, stay as PostgreSQL
 * prints them. The ORM maps them to Dates itself; plain-SQL readers parse them where they need a Date.
 */
function typeOverrides(): pg.CustomTypesConfig {
  const types = new pg.TypeOverrides();
  for (const oid of [1082, 1114, 1184, 1186]) types.setTypeParser(oid, (s: string) => s);
  for (const oid of [1182, 1115, 1185, 1187]) types.setTypeParser(oid, (s: string) => parseArray(s));
  return types;
}

/** Opens PostgreSQL (real or embedded) and applies the committed migrations that are pending. */
export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  const poolMax = opts.poolMax ?? 10;
  let embedded: EmbeddedPostgres | undefined;
  let connection: pg.PoolConfig;
  if (opts.url) {
    connection = { connectionString: opts.url };
  } else {
    // Loaded only when used: PGlite and its extensions weigh ~11 MiB that a real-PostgreSQL deployment never needs.
    if (!opts.endpoint) embedded = await (await import("./embedded.js")).startEmbeddedPostgres(opts.dataDir, poolMax);
    const endpoint = opts.endpoint ?? (embedded as EmbeddedPostgres).endpoint;
    connection = { host: endpoint.host, port: endpoint.port, user: "postgres", database: "postgres" };
  }
  // A real server keeps four connections open through idle time (a cold request resolves its model with parallel
  // queries). Opening one (TCP, then SCRAM's key derivation on both sides) cost the first request after 10 s of
  // silence ~20 ms (measured), when a cache had expired meanwhile. The embedded server's connections are a local
  // socket without authentication: none is kept.
  const pool = new pg.Pool({
    ...connection,
    min: opts.url ? Math.min(4, poolMax) : 0,
    max: poolMax,
    keepAlive: true,
    types: typeOverrides(),
  });
  // A connection the server drops is discarded by the pool and reported as an 'error' event; unheard, that event
  // would end the process. The query in flight, if any, fails on its own.
  pool.on("error", (err) => opts.logger?.warn({ err: err.message }, "PostgreSQL pool error"));
  pool.on("connect", (client) =>
    client.on("error", (err) => opts.logger?.warn({ err: err.message }, "PostgreSQL connection error")),
  );

  const loadOrm = once(async () => {
    const entities = typeof opts.entities === "function" ? await opts.entities() : opts.entities;
    const dbName = opts.url ? decodeURIComponent(new URL(opts.url).pathname.slice(1)) || "postgres" : "postgres";
    return (await import("./orm.js")).initOrm({ pool, dbName, entities, logger: opts.logger });
  });

  try {
    if ((opts.migrate ?? true) && (await pendingMigrations(pool)).length > 0) {
      const migrator = (await loadOrm()).migrator;
      if (opts.url) await migrateExclusively(opts.url, () => migrator.up());
      else await migrator.up();
    }
  } catch (err) {
    const loaded = loadOrm.current();
    await (loaded ? loaded.then((o) => o.close(true)) : pool.end()).catch(() => undefined);
    await embedded?.close();
    throw err;
  }
  return {
    pool,
    orm: loadOrm,
    get ormLoaded() {
      return loadOrm.current() !== undefined;
    },
    kind: embedded || opts.endpoint ? "embedded" : "postgresql",
    async ping() {
      await pool.query("select 1");
    },
    async close() {
      // The ORM's Kysely dialect ends the pool it was given; without an ORM, the pool is ended here.
      const loaded = await loadOrm.current()?.catch(() => undefined);
      if (loaded) await loaded.close(true);
      else await pool.end();
      await embedded?.close();
    },
  };
}

/** The committed migrations not yet applied to the database, in order (all of them on an empty database). */
export async function pendingMigrations(pool: pg.Pool): Promise<string[]> {
  let applied: Set<string>;
  try {
    const { rows } = await pool.query<{ name: string }>(`select name from ${MIGRATIONS_TABLE}`);
    applied = new Set(rows.map((r) => r.name));
  } catch (err) {
    if ((err as { code?: string }).code !== "42P01") throw err; // undefined_table: nothing applied yet
    applied = new Set();
  }
  return migrationNames.filter((n) => !applied.has(n));
}

/** Advisory lock key ("passerelle migrations") serializing migrations between processes sharing a server. */
const MIGRATION_LOCK = 0x7061_7373_6d69;

/**
 * Runs the migrations while holding a session advisory lock on a dedicated connection, so that several processes
 * starting together on one database (replicas) migrate one after the other instead of racing on the same DDL.
 * The embedded database is never shared between processes and needs no lock.
 */
async function migrateExclusively(url: string, up: () => Promise<unknown>): Promise<void> {
  const lock = new pg.Client({ connectionString: url });
  lock.on("error", () => undefined);
  await lock.connect();
  try {
    await lock.query("select pg_advisory_lock($1)", [MIGRATION_LOCK]);
    await up();
  } finally {
    // Ending the session releases the lock.
    await lock.end().catch(() => undefined);
  }
}
