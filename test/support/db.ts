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
  return {
    url: url.toString(),
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
