import os from "node:os";
import { describe, expect, it } from "vitest";
import { createTestDatabase } from "../../../../test/support/db.js";
import { accountEntities } from "../../../accounts/entities.js";
import { openDatabase, pendingMigrations } from "../database.js";
import { migrations } from "./index.js";
import { migrationNames } from "./names.js";

describe("migrations", () => {
  it("lists the same names, in the same order, as the migration classes", () => {
    expect(migrationNames).toEqual(migrations.map((m) => m.name));
  });

  it("a start migrates only what is pending, and loads the ORM only to migrate", async () => {
    const tdb = await createTestDatabase("migr");
    try {
      const first = await openDatabase({ url: tdb.url, dataDir: os.tmpdir(), entities: accountEntities, poolMax: 2 });
      try {
        expect(first.ormLoaded).toBe(true);
        expect(await pendingMigrations(first.pool)).toEqual([]);
        // One applied migration forgotten: the next start applies it again, and only it.
        await first.pool.query("delete from passerelle_migrations where name = $1", ["20261123040000-key-limits"]);
        await first.pool.query(
          `alter table api_key drop constraint api_key_limits_in_range, drop column requests_per_minute,
             drop column requests_per_day, drop column tokens_per_minute, drop column tokens_per_day`,
        );
        expect(await pendingMigrations(first.pool)).toEqual(["20261123040000-key-limits"]);
      } finally {
        await first.close();
      }
      const second = await openDatabase({ url: tdb.url, dataDir: os.tmpdir(), entities: accountEntities, poolMax: 2 });
      try {
        expect(second.ormLoaded).toBe(true);
        expect(await pendingMigrations(second.pool)).toEqual([]);
        const { rows } = await second.pool.query(
          "select 1 from information_schema.columns where table_name = 'api_key' and column_name = 'requests_per_minute'",
        );
        expect(rows).toHaveLength(1);
      } finally {
        await second.close();
      }
      const third = await openDatabase({ url: tdb.url, dataDir: os.tmpdir(), entities: accountEntities, poolMax: 2 });
      try {
        expect(third.ormLoaded).toBe(false);
        await third.ping();
      } finally {
        await third.close();
      }
    } finally {
      await tdb.drop();
    }
  });
});
