import type pg from "pg";
import { TEXT_SEARCH_LANGUAGES } from "../../platform/db/text-search.js";
import type { ChunkRecord } from "../backend.js";

export type TextSearchLanguage = (typeof TEXT_SEARCH_LANGUAGES)[number];

/** True for a language that has a `passerelle_<language>` text-search configuration (created by the migration). */
export function isTextSearchLanguage(language: string): language is TextSearchLanguage {
  return (TEXT_SEARCH_LANGUAGES as readonly string[]).includes(language);
}

/**
 * The text-search configuration of a language, as a SQL literal. Only names of the migration's list get through, so
 * the result may be written into SQL text: the planner then sees a constant configuration (and tsquery), which is
 * what lets it use the GIN index on `chunk.tsv`.
 */
export function textSearchConfig(language: string): string {
  if (!isTextSearchLanguage(language)) throw new RangeError(`unsupported text-search language: ${language}`);
  return `'passerelle_${language}'::regconfig`;
}

/** A vector in pgvector's text form, `[1,0.5,-2]`; a non-finite component is refused here rather than by the server. */
export function vectorLiteral(vector: readonly number[]): string {
  for (const v of vector) if (!Number.isFinite(v)) throw new RangeError("vector components must be finite numbers");
  return `[${vector.join(",")}]`;
}

/**
 * Rows per insert statement. Each row sends ~4 KiB of vector text at 384 dimensions (~12 KiB at 1024) plus its
 * content: 500 rows keep a statement to a few MiB while amortising the round trip and the planning.
 */
export const INSERT_BATCH = 500;

const INSERT = `insert into chunk (document_id, id, collection_id, content, metadata, ts_config, tsv, embedding, created_at)
select u.document_id, u.id, u.collection_id, u.content, u.metadata, l.config, to_tsvector(l.config, u.content),
  u.embedding::vector, u.created_at
from unnest($1::uuid[], $2::int[], $3::uuid[], $4::text[], $5::jsonb[], $6::text[], $7::timestamptz[])
  as u(document_id, id, collection_id, content, metadata, embedding, created_at),
  (select ('passerelle_' || $8::text)::regconfig as config) l`;

/**
 * Writes chunk rows with their full-text vector (in the collection's language) and embedding: one multi-row insert
 * per batch of {@link INSERT_BATCH}, the columns sent as arrays and spread by `unnest`, so that the statement text
 * and its parameter count never depend on the batch size (a single parsed statement, no 65 535-parameter limit).
 * Run it inside the caller's transaction (the store's "ready" transaction): pass that transaction's client.
 * Returns the number of rows written.
 */
export async function insertChunks(
  client: pg.PoolClient | pg.Pool,
  chunks: readonly ChunkRecord[],
  language: string,
): Promise<number> {
  if (!isTextSearchLanguage(language)) throw new RangeError(`unsupported text-search language: ${language}`);
  let written = 0;
  for (let start = 0; start < chunks.length; start += INSERT_BATCH) {
    const batch = chunks.slice(start, start + INSERT_BATCH);
    const result = await client.query(INSERT, [
      batch.map((c) => c.documentId),
      batch.map((c) => c.id),
      batch.map((c) => c.collectionId),
      batch.map((c) => c.content),
      batch.map((c) => JSON.stringify(c.metadata)),
      batch.map((c) => vectorLiteral(c.embedding)),
      batch.map((c) => c.createdAt),
      language,
    ]);
    written += result.rowCount ?? 0;
  }
  return written;
}
