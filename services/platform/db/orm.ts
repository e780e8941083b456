// Loaded only through `Database.orm()` (database.ts): the first administrative write, or a start with migrations
// pending. Importing MikroORM, its SQL layer, Kysely and the migrator costs some 9 MB of V8 heap and ~19 MiB of RSS
// (measured in isolation), which a process that only serves traffic never needs.
import "./orm-context.js";
import type { EntitySchema } from "@mikro-orm/core";
import { Migrator } from "@mikro-orm/migrations";
import { MikroORM } from "@mikro-orm/postgresql";
import { PostgresDialect } from "kysely";
import type pg from "pg";
import type { Logger } from "pino";
import { migrations } from "./migrations/index.js";
import { MIGRATIONS_TABLE } from "./migrations/names.js";

/** MikroORM over the platform's own `pg` pool (database.ts), so that both share connections and type parsers. */
export async function initOrm(opts: {
  pool: pg.Pool;
  /** The database's name (MikroORM's platform and schema tools read it; connections come from `pool`). */
  dbName: string;
  // biome-ignore lint/suspicious/noExplicitAny: MikroORM entity schemas are heterogeneous by nature
  entities: EntitySchema<any>[];
  logger?: Logger;
}): Promise<MikroORM> {
  return MikroORM.init({
    // Kysely's dialect over the given pool: MikroORM opens no pool of its own. Closing the ORM ends that pool.
    driverOptions: new PostgresDialect({ pool: opts.pool }),
    dbName: opts.dbName,
    entities: opts.entities,
    extensions: [Migrator],
    migrations: {
      migrationsList: migrations,
      tableName: MIGRATIONS_TABLE,
      transactional: true,
      allOrNothing: true,
      snapshot: false,
    },
    allowGlobalContext: false,
    metadataCache: { enabled: false },
    debug: false,
    logger: (msg) => opts.logger?.debug({ orm: true }, msg),
  });
}
