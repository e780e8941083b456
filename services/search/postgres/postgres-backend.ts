import type pg from "pg";
import type { Logger } from "pino";
import { inTransaction } from "../../platform/db/transaction.js";
import { internal, invalidArgument } from "../../platform/errors.js";
import {
  HYBRID_SEMANTIC_DEPTH,
  type Metadata,
  type SearchBackend,
  type SearchHit,
  type SearchQuery,
} from "../backend.js";
import { isTextSearchLanguage } from "./chunk-sql.js";
import { checkDimensions, hybridSql, lexicalSql, type Statement, semanticSql } from "./search-sql.js";

/**
 * The default search backend: pgvector (HNSW, cosine) and PostgreSQL full text over the `chunk` table itself. The
 * collection store writes chunk rows — content, tsvector and embedding — in the transaction that marks a document
 * ready (with `insertChunks`), so there is nothing to copy: `index` has nothing to do, and a search sees exactly the
 * ready documents. Works unchanged on PostgreSQL 15 + pgvector 0.8.0 and on embedded PGlite (pgvector 0.8.7).
 */
export interface PostgresSearchOptions {
  /** The application's pool (`nativePool(orm)`); not closed by `close()`. */
  pool: pg.Pool;
  logger?: Logger;
}

/** pgvector's HNSW indexes `vector` columns of at most 2000 dimensions. */
const HNSW_MAX_DIMENSIONS = 2000;

/** A lexeme in more than this fraction of the chunks is too common to select candidates by (see commonWords). */
const COMMON_FRACTION = 0.05;
const COMMON_TTL_MS = 60_000;

/** pgvector's ceiling for `hnsw.ef_search`. */
const EF_SEARCH_MAX = 1000;

/**
 * The transaction-local settings of a search that wants `depth` rows (see `run` below), as SQL text; exported for
 * the tests that EXPLAIN the backend's statements.
 */
export function searchSettings(depth: number): string {
  const ef = Number.isInteger(depth) ? Math.min(EF_SEARCH_MAX, Math.max(40, depth)) : 40;
  return `set local jit = off; set local hnsw.iterative_scan = relaxed_order; set local hnsw.ef_search = ${ef}`;
}

interface HitRow {
  document_id: string;
  id: number;
  collection_id: string;
  content: string;
  metadata: Metadata;
  /** A string through MikroORM's pool, which keeps timestamps as PostgreSQL prints them. */
  created_at: string | Date;
  score: number;
}

export function createPostgresSearchBackend(opts: PostgresSearchOptions): SearchBackend {
  const { pool, logger } = opts;

  /**
   * Runs a search statement in a short transaction whose `set local` settings end with it:
   * - `hnsw.iterative_scan = relaxed_order` (pgvector 0.8): a filtered HNSW scan (scope, documents, metadata) keeps
   *   searching the graph until it has enough rows instead of returning the few of its `ef_search` candidates that
   *   pass the filter; `ef_search` at least the rows wanted, within pgvector's 40..1000.
   * - `jit = off`: a plan that reads many rows (an exact vector scan where no HNSW index applies, a lexical query
   *   over a large collection) can pass `jit_above_cost`, and compiling then takes tens of milliseconds, more than
   *   such a query runs.
   * The settings go in one simple-protocol round trip with `begin` (all integers, nothing from the user).
   */
  async function run(statement: Statement, depth: number): Promise<HitRow[]> {
    return inTransaction(
      pool,
      async (client) => (await client.query<HitRow>(statement.text, statement.values)).rows,
      `begin; ${searchSettings(depth)}`,
    );
  }

  /**
   * Lexemes found in more than {@link COMMON_FRACTION} of the chunks, from PostgreSQL's statistics of `chunk.tsv`
   * (`most_common_elems`, gathered by ANALYZE): natural-language lexical queries leave them out of their "any word"
   * match (search-sql.ts). Read at most once per {@link COMMON_TTL_MS}; when the statistics are missing or stale
   * (a fifth of the rows changed since), an ANALYZE of that column is started in the background, at most once per
   * TTL, rather than waiting for autovacuum.
   */
  let common: { words: string[]; at: number; pending?: Promise<void> } = { words: [], at: 0 };
  function commonWords(): string[] {
    const now = Date.now();
    if (now - common.at > COMMON_TTL_MS && !common.pending) {
      common.pending = refreshCommonWords()
        .catch((err) => logger?.warn({ err }, "could not read full-text statistics"))
        .finally(() => {
          common.pending = undefined;
        });
    }
    return common.words;
  }
  async function refreshCommonWords(): Promise<void> {
    const stale = await pool.query<{ stale: boolean }>(
      `select coalesce(n_live_tup > 100 and (last_analyze is null and last_autoanalyze is null
         or n_mod_since_analyze > n_live_tup / 5), false) as stale
       from pg_stat_user_tables where relname = 'chunk' and schemaname = current_schema()`,
    );
    if (stale.rows[0]?.stale) await pool.query("analyze chunk (tsv)");
    const res = await pool.query<{ elems: string[] | null; freqs: number[] | null }>(
      `select most_common_elems::text::text[] as elems, most_common_elem_freqs as freqs from pg_stats
       where schemaname = current_schema() and tablename = 'chunk' and attname = 'tsv'`,
    );
    const row = res.rows[0];
    const words: string[] = [];
    // The frequencies array ends with three summary numbers (min, max, null fraction) beyond the elements.
    row?.elems?.forEach((w, i) => {
      if ((row.freqs?.[i] ?? 0) > COMMON_FRACTION) words.push(w);
    });
    common = { words, at: Date.now() };
  }

  function toHits(rows: HitRow[], method: SearchQuery["method"]): SearchHit[] {
    return rows.map((r) => ({
      method,
      score: Number(r.score),
      chunk: {
        documentId: r.document_id,
        id: r.id,
        collectionId: r.collection_id,
        content: r.content,
        metadata: r.metadata,
        createdAt: new Date(r.created_at),
      },
    }));
  }

  function checkQuery(q: SearchQuery): readonly number[] | undefined {
    for (const scope of q.collections)
      if (!isTextSearchLanguage(scope.language)) throw invalidArgument(`Unsupported language '${scope.language}'.`);
    if (q.method === "lexical") return undefined;
    if (!q.vector || q.vector.length === 0) throw invalidArgument(`A ${q.method} search needs a query vector.`);
    try {
      checkDimensions(q.vector.length);
    } catch {
      throw invalidArgument(`Invalid query vector dimension: ${q.vector.length}.`);
    }
    return q.vector;
  }

  return {
    name: "postgres",

    /**
     * Creates `chunk_embedding_hnsw_<N>`, the HNSW index of N-dimensional embeddings: an expression index over
     * `embedding::vector(N)`, partial on `vector_dims(embedding) = N`, since the column has no fixed dimension.
     * Two processes starting together may both find it missing: the loser of the race gets a duplicate error that
     * means the index is there. Beyond 2000 dimensions HNSW cannot index `vector`: searches then scan exactly.
     */
    async prepare(dimensions) {
      const n = checkDimensions(dimensions);
      if (n > HNSW_MAX_DIMENSIONS) {
        logger?.warn({ dimensions: n }, "embeddings too large for an HNSW index: semantic search will scan exactly");
        return;
      }
      const name = `chunk_embedding_hnsw_${n}`;
      try {
        await pool.query(
          `create index if not exists ${name} on chunk using hnsw ((embedding::vector(${n})) vector_cosine_ops)
           where vector_dims(embedding) = ${n}`,
        );
      } catch (err) {
        const code = (err as { code?: string }).code;
        // 42P07 duplicate_table; 23505 unique_violation on pg_class's name index when both inserted the entry.
        if (code !== "42P07" && code !== "23505") throw internal(err);
        logger?.debug({ index: name }, "HNSW index created by another process");
      }
    },

    /** Chunk rows are the index: the store has already written them (see `insertChunks`). */
    async index() {},

    async remove(target) {
      try {
        if ("collectionId" in target)
          await pool.query("delete from chunk where collection_id = $1", [target.collectionId]);
        else if (target.chunkId === undefined)
          await pool.query("delete from chunk where document_id = $1", [target.documentId]);
        else
          await pool.query("delete from chunk where document_id = $1 and id = $2", [target.documentId, target.chunkId]);
      } catch (err) {
        throw internal(err);
      }
    },

    async search(q) {
      const vector = checkQuery(q);
      if (q.collections.length === 0 || q.limit <= 0) return [];
      // The rows the HNSW walk must find: hybrid's semantic side is as deep as semanticSql's top HYBRID_SEMANTIC_DEPTH,
      // and walks the graph as that search does (same ef_search), so the two rankings are the same.
      const depth = q.method === "hybrid" ? HYBRID_SEMANTIC_DEPTH : q.limit + q.offset;
      const statement =
        q.method === "lexical"
          ? lexicalSql(q, commonWords())
          : q.method === "semantic"
            ? semanticSql(q, vector as readonly number[])
            : hybridSql(q, vector as readonly number[], commonWords());
      try {
        return toHits(await run(statement, depth), q.method);
      } catch (err) {
        throw internal(err);
      }
    },

    async close() {},
  };
}
