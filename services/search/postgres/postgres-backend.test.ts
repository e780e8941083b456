import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import type pg from "pg";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/db.js";
import { accountEntities } from "../../accounts/entities.js";
import { type Database, openDatabase } from "../../platform/db/database.js";
import {
  HYBRID_SEMANTIC_DEPTH,
  HYBRID_WINDOW,
  type Metadata,
  type MetadataFilter,
  type SearchBackend,
  type SearchHit,
  type SearchQuery,
} from "../backend.js";
import { reciprocalRankFusion } from "../rrf.js";
import { insertChunks } from "./chunk-sql.js";
import { createPostgresSearchBackend } from "./postgres-backend.js";

/**
 * The backend on both engines the platform runs on: PostgreSQL 15 + pgvector 0.8.0 (the test server) and embedded
 * PGlite (pgvector 0.8.7). Seven chunks with hand-made 4-dimensional vectors, so every score is computable by hand.
 */
const CHUNKS: [label: string, text: string, vector: number[], metadata: Metadata][] = [
  [
    "A1",
    "Les élèves de la classe préparent un exposé sur la Révolution.",
    [1, 0, 0, 0],
    { year: 2020, dept: "lettres", public: true },
  ],
  [
    "A2",
    "Le conseil municipal vote le budget annuel de la commune.",
    [0.9, 0.1, 0, 0],
    { year: 2021, dept: "finances", public: false },
  ],
  [
    "B1",
    "Les eleves du lycee visitent le musee de la ville.",
    [0, 1, 0, 0],
    { year: 2019, dept: "lettres", rating: 4.5 },
  ],
  ["B2", "Une école accueille de nouveaux enseignants.", [0, 0, 1, 0], { year: "2020" }],
  [
    "C1",
    "The students were running experiments in the laboratories.",
    [0.7, 0.7, 0, 0],
    { year: 2020, dept: "science" },
  ],
  ["C2", "A student runs the laboratory every morning.", [0, 0, 0, 1], { year: 2022, dept: "Science" }],
  ["X1", "Les élèves de la classe préparent un exposé.", [1, 0, 0, 0], { dept: "lettres" }],
];

describe.each(["postgresql", "embedded"] as const)("PostgreSQL search backend (%s)", (kind) => {
  let tdb: TestDatabase | undefined;
  let dataDir: string | undefined;
  let db: Database;
  let pool: pg.Pool;
  let backend: SearchBackend;
  const ids = { fr: randomUUID(), en: randomUUID(), other: randomUUID() };
  const docs: Record<string, string> = { A: randomUUID(), B: randomUUID(), C: randomUUID(), X: randomUUID() };
  const labels = new Map<string, string>();

  beforeAll(async () => {
    const logger = pino({ level: "warn" });
    if (kind === "postgresql") {
      tdb = await createTestDatabase("search_pg");
      db = await openDatabase({ url: tdb.url, dataDir: os.tmpdir(), entities: accountEntities, logger });
    } else {
      dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "search-pglite-"));
      db = await openDatabase({ dataDir, entities: accountEntities, logger });
    }
    pool = db.pool;
    backend = createPostgresSearchBackend({ pool, logger });
    const now = new Date();
    const [roleId, userId] = [randomUUID(), randomUUID()];
    await pool.query("insert into role values ($1, 'r', '{}', $2, $2)", [roleId, now]);
    await pool.query(
      "insert into app_user (id, email, name, role_id, created_at, updated_at) values ($1, 'a@b.c', 'a', $2, $3, $3)",
      [userId, roleId, now],
    );
    const language = { fr: "french", en: "english", other: "french" } as const;
    for (const [key, id] of Object.entries(ids))
      await pool.query(
        `insert into collection (id, owner_id, name, visibility, language, embeddings_model, created_at, updated_at)
         values ($1, $2, $5, 'private', $3, 'e', $4, $4)`,
        [id, userId, language[key as keyof typeof ids], now, key],
      );
    const collectionOf = { A: ids.fr, B: ids.fr, C: ids.en, X: ids.other };
    for (const [doc, collectionId] of Object.entries(collectionOf)) {
      await pool.query(
        `insert into document (id, collection_id, name, status, created_at, updated_at) values ($1, $2, 'd', 'ready', $3, $3)`,
        [docs[doc], collectionId, now],
      );
      const chunks = CHUNKS.filter(([label]) => label.startsWith(doc)).map(([label, content, embedding, metadata]) => {
        labels.set(`${docs[doc]}#${label.slice(1)}`, label);
        return {
          documentId: docs[doc] as string,
          id: Number(label.slice(1)),
          collectionId,
          content,
          metadata,
          embedding,
          createdAt: now,
        };
      });
      await insertChunks(pool, chunks, collectionId === ids.en ? "english" : "french");
    }
    await backend.prepare(4);
  });

  afterAll(async () => {
    await db?.close();
    await tdb?.drop();
    if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
  });

  const query = (over: Partial<SearchQuery>): SearchQuery => ({
    text: "",
    vector: [1, 0, 0, 0],
    collections: [
      { id: ids.fr, language: "french" },
      { id: ids.en, language: "english" },
    ],
    documentIds: [],
    method: "semantic",
    limit: 100,
    offset: 0,
    rrfK: 60,
    semanticWeight: 1,
    lexicalWeight: 1,
    ...over,
  });
  const label = (h: SearchHit) => labels.get(`${h.chunk.documentId}#${h.chunk.id}`);
  const search = async (over: Partial<SearchQuery>) => (await backend.search(query(over))).map(label);

  it("ranks by cosine similarity, scores 1 − distance, without the embedding", async () => {
    const hits = await backend.search(query({}));
    expect(hits.slice(0, 3).map(label)).toEqual(["A1", "A2", "C1"]);
    expect(hits.slice(3).map(label).sort()).toEqual(["B1", "B2", "C2"]);
    expect(hits[0]?.score).toBeCloseTo(1, 6);
    expect(hits[1]?.score).toBeCloseTo(0.9 / Math.sqrt(0.82), 6);
    expect(hits[2]?.score).toBeCloseTo(Math.SQRT1_2, 6);
    expect(hits[3]?.score).toBeCloseTo(0, 6);
    expect(hits[0]).toEqual({
      method: "semantic",
      score: hits[0]?.score,
      chunk: {
        documentId: docs.A,
        id: 1,
        collectionId: ids.fr,
        content: CHUNKS[0]?.[1],
        metadata: CHUNKS[0]?.[3],
        createdAt: expect.any(Date),
      },
    });
  });

  it("applies the score threshold, then the page", async () => {
    expect(await search({ scoreThreshold: 0.7 })).toEqual(["A1", "A2", "C1"]);
    expect(await search({ scoreThreshold: 0.7, limit: 1, offset: 1 })).toEqual(["A2"]);
    expect(await search({ scoreThreshold: 0.9999 })).toEqual(["A1"]);
  });

  it("pages every method", async () => {
    expect(await search({ limit: 2, offset: 1 })).toEqual(["A2", "C1"]);
    const lexical = await search({ method: "lexical", text: "élève" });
    expect(lexical).toHaveLength(2);
    expect(await search({ method: "lexical", text: "élève", limit: 1, offset: 1 })).toEqual(lexical.slice(1));
    const hybrid = await search({ method: "hybrid", text: "élève" });
    expect(await search({ method: "hybrid", text: "élève", limit: 2, offset: 2 })).toEqual(hybrid.slice(2, 4));
    expect(await search({ limit: 0 })).toEqual([]);
  });

  it("matches French words whatever their accents and inflection", async () => {
    for (const text of ["élève", "eleve", "ÉLÈVES", "élevès"])
      expect((await search({ method: "lexical", text })).sort()).toEqual(["A1", "B1"]);
    expect(await search({ method: "lexical", text: "écoles" })).toEqual(["B2"]);
    const [hit] = await backend.search(query({ method: "lexical", text: "budget" }));
    expect(hit?.method).toBe("lexical");
    expect(hit?.score).toBeGreaterThan(0);
    expect(hit?.score).toBeLessThan(1);
  });

  it("stems English collections with the English stemmer, with websearch syntax", async () => {
    expect((await search({ method: "lexical", text: "student running laboratory" })).sort()).toEqual(["C1", "C2"]);
    expect(await search({ method: "lexical", text: "laboratories -morning" })).toEqual(["C1"]);
    expect(await search({ method: "lexical", text: '"student runs"' })).toEqual(["C2"]);
    expect(await search({ method: "lexical", text: "students or budget" })).toHaveLength(3);
  });

  it("reads a natural-language query as any of its words, chunks with every word first", async () => {
    // "student running laboratory" are all in C1 and C2; "hamster" is nowhere: every-word matching would find none.
    const found = await backend.search(query({ method: "lexical", text: "student running laboratory hamster" }));
    expect(found.map(label).sort()).toEqual(["C1", "C2"]);
    const strict = await backend.search(query({ method: "lexical", text: "student running laboratory" }));
    // With every word present, the score carries the ½ of a strict match.
    expect(strict.every((h) => h.score >= 0.5 && h.score < 1)).toBe(true);
    expect(found.every((h) => h.score > 0 && h.score < 0.5)).toBe(true);
    // Web-search syntax keeps its meaning: a quoted phrase with a missing word finds nothing.
    expect(await search({ method: "lexical", text: '"student hamster"' })).toEqual([]);
  });

  it("finds nothing lexically in a query made only of stop words", async () => {
    expect(
      await search({ method: "lexical", text: "le la de et du", collections: [{ id: ids.fr, language: "french" }] }),
    ).toEqual([]);
    expect(await search({ method: "lexical", text: "the of and" })).toEqual([]);
    expect(await search({ method: "hybrid", text: "the of and", limit: 3 })).toEqual(["A1", "A2", "C1"]);
  });

  it("fuses like reciprocalRankFusion on the same two rankings", async () => {
    const cases: Partial<SearchQuery>[] = [
      { text: "élève", limit: 10, offset: 0 },
      {
        text: "élève budget or student",
        vector: [0, 0.2, 0.1, 1],
        limit: 3,
        offset: 1,
        semanticWeight: 1,
        lexicalWeight: 2,
      },
      { text: "laboratory or exposé", vector: [0.2, 1, 0, 0], limit: 4, offset: 0, rrfK: 1, semanticWeight: 0.3 },
    ];
    for (const c of cases) {
      const sem = await backend.search(query({ ...c, method: "semantic", limit: HYBRID_SEMANTIC_DEPTH, offset: 0 }));
      const lex = await backend.search(query({ ...c, method: "lexical", limit: HYBRID_WINDOW, offset: 0 }));
      const q = query({ ...c, method: "hybrid" });
      const expected = reciprocalRankFusion(
        [
          { hits: sem, weight: q.semanticWeight },
          { hits: lex, weight: q.lexicalWeight },
        ],
        q.rrfK,
      ).slice(q.offset, q.offset + q.limit);
      const hybrid = await backend.search(q);
      expect(hybrid.map((h) => [label(h), h.method])).toEqual(expected.map((h) => [label(h), "hybrid"]));
      // Same float8 arithmetic in the same order: equal to the last bit.
      expect(hybrid.map((h) => h.score)).toEqual(expected.map((h) => h.score));
      expect(hybrid[0]?.chunk).toEqual(expected[0]?.chunk);
    }
  });

  it("never returns a chunk of a collection outside the scope", async () => {
    for (const method of ["semantic", "lexical", "hybrid"] as const)
      expect(await search({ method, text: "élèves exposé" })).not.toContain("X1");
    expect(await search({ collections: [{ id: ids.other, language: "french" }] })).toEqual(["X1"]);
  });

  it("keeps to the documents asked for", async () => {
    expect((await search({ documentIds: [docs.B as string] })).sort()).toEqual(["B1", "B2"]);
    expect(await search({ method: "lexical", text: "élève", documentIds: [docs.A as string] })).toEqual(["A1"]);
  });

  it.each<[string, MetadataFilter, string[]]>([
    ["eq string", { type: "eq", key: "dept", value: "lettres" }, ["A1", "B1"]],
    ["eq number, not its string", { type: "eq", key: "year", value: 2020 }, ["A1", "C1"]],
    ["eq string, not the number", { type: "eq", key: "year", value: "2020" }, ["B2"]],
    ["eq boolean", { type: "eq", key: "public", value: true }, ["A1"]],
    ["ne, with chunks lacking the key", { type: "ne", key: "dept", value: "lettres" }, ["A2", "B2", "C1", "C2"]],
    ["gt number", { type: "gt", key: "year", value: 2020 }, ["A2", "C2"]],
    ["gte number", { type: "gte", key: "year", value: 2020 }, ["A1", "A2", "C1", "C2"]],
    ["lt number", { type: "lt", key: "year", value: 2020 }, ["B1"]],
    ["lte fraction", { type: "lte", key: "rating", value: 4.5 }, ["B1"]],
    ["gt string, byte order", { type: "gt", key: "dept", value: "lettres" }, ["C1"]],
    ["lt string, byte order", { type: "lt", key: "dept", value: "g" }, ["A2", "C2"]],
    ["gt boolean", { type: "gt", key: "public", value: false }, ["A1"]],
    ["in", { type: "in", key: "dept", value: ["lettres", "science"] }, ["A1", "B1", "C1"]],
    ["in, mixed types", { type: "in", key: "year", value: [2019, "2020"] }, ["B1", "B2"]],
    ["nin", { type: "nin", key: "dept", value: ["lettres", "finances"] }, ["B2", "C1", "C2"]],
    [
      "and",
      {
        type: "and",
        filters: [
          { type: "eq", key: "dept", value: "lettres" },
          { type: "gte", key: "year", value: 2020 },
        ],
      },
      ["A1"],
    ],
    [
      "or of and",
      {
        type: "or",
        filters: [
          { type: "eq", key: "public", value: false },
          {
            type: "and",
            filters: [
              { type: "eq", key: "dept", value: "science" },
              { type: "lt", key: "year", value: 2021 },
            ],
          },
        ],
      },
      ["A2", "C1"],
    ],
    ["empty and", { type: "and", filters: [] }, ["A1", "A2", "B1", "B2", "C1", "C2"]],
    ["empty or", { type: "or", filters: [] }, []],
  ])("filters metadata: %s", async (_, filter, expected) => {
    expect((await search({ filter })).sort()).toEqual(expected);
    const lexical = await search({ method: "lexical", text: "élève or student", filter });
    expect(lexical.every((l) => expected.includes(l as string))).toBe(true);
  });

  it("refuses a semantic search without a vector and an unknown language", async () => {
    await expect(backend.search(query({ vector: undefined }))).rejects.toMatchObject({ code: Code.InvalidArgument });
    await expect(
      backend.search(query({ method: "lexical", collections: [{ id: ids.fr, language: "klingon" }] })),
    ).rejects.toBeInstanceOf(ConnectError);
    await expect(insertChunks(pool, [], "klingon")).rejects.toThrow(RangeError);
  });

  it("prepares the HNSW index once, even when asked concurrently", async () => {
    await Promise.all([backend.prepare(8), backend.prepare(8), backend.prepare(8), backend.prepare(4)]);
    const { rows } = await pool.query<{ indexname: string }>(
      "select indexname from pg_indexes where tablename = 'chunk' and indexname like 'chunk_embedding_hnsw_%' order by 1",
    );
    expect(rows.map((r) => r.indexname)).toEqual(["chunk_embedding_hnsw_4", "chunk_embedding_hnsw_8"]);
    for (const bad of [0, 1.5, 16_001]) await expect(backend.prepare(bad)).rejects.toThrow(RangeError);
    await backend.prepare(3072); // beyond HNSW's 2000 dimensions: no index, a warning
  });

  it("removes a chunk, a document, a collection", async () => {
    await backend.remove({ documentId: docs.A as string, chunkId: 2 });
    expect(await search({})).not.toContain("A2");
    expect(await search({})).toContain("A1");
    await backend.remove({ documentId: docs.B as string });
    await backend.remove({ collectionId: ids.en });
    expect(await search({})).toEqual(["A1"]);
  });
});
