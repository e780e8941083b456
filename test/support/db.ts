import { randomBytes } from "node:crypto";
import pg from "pg";
import { testDatabaseUrl } from "./env.js";

export interface TestDatabase {
  /** URL of a fresh, empty database on the test server. */
  url: string;
  drop(): Promise<void>;
}

/** A fresh database per test file: isolation without mocks, on the real PostgreSQL 15 + pgvector. */
export async function createTestDatabase(prefix = "t"): Promise<TestDatabase> {
  const admin = testDatabaseUrl();
  const name = `${prefix}_${randomBytes(6).toString("hex")}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    await client.query(`create database "${name}"`);
  } finally {
    await client.end();
  }
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return existingTestDatabase(url.toString());
}

/** A database createTestDatabase made (possibly in another process), by its URL: to use it again, and drop it. */
export function existingTestDatabase(databaseUrl: string): TestDatabase {
  const admin = testDatabaseUrl();
  const name = decodeURIComponent(new URL(databaseUrl).pathname.slice(1));
  if (!/^\w+_[0-9a-f]{12}$/.test(name)) throw new Error(`not a test database: ${name}`);
  return {
    url: databaseUrl,
    async drop() {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      try {
        await c.query(`drop database if exists "${name}" with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}
