import { randomUUID } from "node:crypto";
import os from "node:os";
import type pg from "pg";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/db.js";
import { accountEntities } from "../../accounts/entities.js";
import { type Database, openDatabase } from "../../platform/db/database.js";
import {
  type ChunkRecord,
  HYBRID_SEMANTIC_DEPTH,
  HYBRID_WINDOW,
  type SearchBackend,
  type SearchQuery,
} from "../backend.js";
import { chunkKey, reciprocalRankFusion } from "../rrf.js";
import { insertChunks } from "./chunk-sql.js";
import { createPostgresSearchBackend, searchSettings } from "./postgres-backend.js";
import { hybridSql, semanticSql } from "./search-sql.js";

/**
 * The HNSW index at a few thousand rows: the planner walks it for a filtered semantic query, and pgvector 0.8's
 * iterative scan still returns a full page when the filter keeps only a small fraction of the graph's candidates.
 */
const ROWS = 4000;
const DIMS = 8;

/** A seeded generator (mulberry32): the same vectors on every run. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("HNSW index on PostgreSQL", () => {
  let tdb: TestDatabase;
  let db: Database;
  let pool: pg.Pool;
  let backend: SearchBackend;
  const collections = [randomUUID(), randomUUID()];
  const random = rng(7);
  const vector = () => Array.from({ length: DIMS }, () => random() - 0.5);
  const chunks: ChunkRecord[] = [];

  beforeAll(async () => {
    tdb = await createTestDatabase("search_hnsw");
    db = await openDatabase({
      url: tdb.url,
      dataDir: os.tmpdir(),
      entities: accountEntities,
      logger: pino({ level: "warn" }),
    });
    pool = db.pool;
    backend = createPostgresSearchBackend({ pool });
    await backend.prepare(DIMS);
    const now = new Date();
    const [roleId, userId] = [randomUUID(), randomUUID()];
    await pool.query("insert into role values ($1, 'r', '{}', $2, $2)", [roleId, now]);
    await pool.query(
      "insert into app_user (id, email, name, role_id, created_at, updated_at) values ($1, 'a@b.c', 'a', $2, $3, $3)",
      [userId, roleId, now],
    );
    for (const [c, collectionId] of collections.entries()) {
      await pool.query(
        `insert into collection (id, owner_id, name, visibility, language, embeddings_model, created_at, updated_at)
         values ($1, $2, $3, 'private', 'english', 'e', $4, $4)`,
        [collectionId, userId, `c${c}`, now],
      );
      for (let d = 0; d < ROWS / 2 / 100; d++) {
        const documentId = randomUUID();
        await pool.query(
          `insert into document (id, collection_id, name, status, created_at, updated_at) values ($1, $2, 'd', 'ready', $3, $3)`,
          [documentId, collectionId, now],
        );
        for (let i = 1; i <= 100; i++) {
          const n = chunks.length;
          const content = `chunk ${n} about ${n % 2 ? "rivers" : "mountains"}`;
          chunks.push({
            documentId,
            id: i,
            collectionId,
            content,
            metadata: { n },
            embedding: vector(),
            createdAt: now,
          });
        }
      }
    }
    // More than one batch of the multi-row insert.
    expect(await insertChunks(pool, chunks, "english")).toBe(ROWS);
    await pool.query("analyze chunk");
  });

  afterAll(async () => {
    await db?.close();
    await tdb?.drop();
  });

  const query = (over: Partial<SearchQuery>): SearchQuery => ({
    text: "rivers",
    vector: vector(),
    collections: [{ id: collections[0] as string, language: "english" }],
    documentIds: [],
    method: "semantic",
    limit: 20,
    offset: 0,
    rrfK: 60,
    semanticWeight: 1,
    lexicalWeight: 1,
    // Keeps ~5% of the collection's chunks, and is not something an index answers.
    filter: { type: "lt", key: "n", value: 100 },
    ...over,
  });

  /** EXPLAIN of a statement under the backend's settings, with sequential scans made expensive. */
  async function explain(statement: { text: string; values: unknown[] }, extra = ""): Promise<string> {
    const client = await pool.connect();
    try {
      await client.query(`begin; ${searchSettings(20)}; set local enable_seqscan = off; ${extra}`);
      const { rows } = await client.query(`explain ${statement.text}`, statement.values);
      return rows.map((r: { "QUERY PLAN": string }) => r["QUERY PLAN"]).join("\n");
    } finally {
      await client.query("rollback");
      client.release();
    }
  }

  it("walks the index for a filtered semantic query, and for hybrid's semantic side", async () => {
    const q = query({});
    expect(await explain(semanticSql(q, q.vector as number[]))).toContain(
      `Index Scan using chunk_embedding_hnsw_${DIMS}`,
    );
    expect(await explain(hybridSql(q, q.vector as number[]))).toContain(
      `Index Scan using chunk_embedding_hnsw_${DIMS}`,
    );
  });

  it("returns a full page when the filter keeps few of the nearest candidates (iterative scan)", async () => {
    const q = query({});
    const hits = await backend.search(q);
    expect(hits).toHaveLength(20);
    expect(hits.every((h) => (h.chunk.metadata.n as number) < 100)).toBe(true);
    const scores = hits.map((h) => h.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    // HNSW is approximate: most of the exact top 20, computed here.
    const cosine = (a: number[], b: number[]) =>
      a.reduce((s, x, i) => s + x * (b[i] as number), 0) / (Math.hypot(...a) * Math.hypot(...b));
    const exact = chunks
      .filter((c) => c.collectionId === collections[0] && (c.metadata.n as number) < 100)
      .map((c) => ({ n: c.metadata.n, score: cosine(c.embedding, q.vector as number[]) }))
      .sort((a, b) => b.score - a.score)
      .slice(0, 20)
      .map((c) => c.n);
    const found = hits.filter((h) => exact.includes(h.chunk.metadata.n as number));
    expect(found.length).toBeGreaterThanOrEqual(16);
  });

  it("would return a partial page without the iterative scan", async () => {
    const q = query({});
    const statement = semanticSql(q, q.vector as number[]);
    const client = await pool.connect();
    try {
      await client.query(`begin; ${searchSettings(20)}; set local enable_seqscan = off`);
      await client.query("set local hnsw.iterative_scan = off");
      const { rows } = await client.query(statement.text, statement.values);
      expect(rows.length).toBeLessThan(20);
    } finally {
      await client.query("rollback");
      client.release();
    }
  });

  it("fuses the semantic top HYBRID_SEMANTIC_DEPTH with the lexical top HYBRID_WINDOW, whatever the page", async () => {
    // A whole collection (2000 chunks, 1000 of them about rivers): both rankings run deeper than the semantic depth.
    const q = query({ method: "hybrid", filter: undefined, limit: HYBRID_WINDOW, offset: 0 });
    const semantic = await backend.search({ ...q, method: "semantic", limit: HYBRID_SEMANTIC_DEPTH });
    const lexical = await backend.search({ ...q, method: "lexical", limit: HYBRID_WINDOW });
    expect([semantic.length, lexical.length]).toEqual([HYBRID_SEMANTIC_DEPTH, HYBRID_WINDOW]);
    const expected = reciprocalRankFusion(
      [
        { hits: semantic, weight: 1 },
        { hits: lexical, weight: 1 },
      ],
      60,
    ).slice(0, HYBRID_WINDOW);
    const whole = await backend.search(q);
    expect(whole.map(chunkKey)).toEqual(expected.map(chunkKey));
    expect(whole.map((h) => h.score)).toEqual(expected.map((h) => h.score));
    // Pages are slices of that ranking.
    const pages = [];
    for (let offset = 0; offset < HYBRID_WINDOW; offset += 25)
      pages.push(...(await backend.search({ ...q, limit: 25, offset })).map(chunkKey));
    expect(pages).toEqual(expected.map(chunkKey));
  });
});
