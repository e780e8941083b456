/**
 * The names of every committed migration, in order: what a start compares with `passerelle_migrations` in one plain
 * query, so that MikroORM and the migrations are loaded only when one is pending (index.ts lists the same names
 * with their classes; a test keeps both lists equal).
 */
export const migrationNames: readonly string[] = [
  "20261123000000-accounts",
  "20261123010000-models",
  "20261123020000-governance",
  "20261123030000-grant-limits",
  "20261123040000-key-limits",
  "20261123050000-collections",
  "20261124000000-models-file-entries",
];

/** The table MikroORM's migrator records applied migrations in. */
export const MIGRATIONS_TABLE = "passerelle_migrations";
