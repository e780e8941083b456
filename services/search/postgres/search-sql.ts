import { HYBRID_SEMANTIC_DEPTH, HYBRID_WINDOW, type SearchQuery } from "../backend.js";
import { textSearchConfig, vectorLiteral } from "./chunk-sql.js";
import { metadataFilterSql } from "./filter-sql.js";

/**
 * The three searches as single SQL statements (text + bind values). Scope, filters, the query text and vector are
 * always bind parameters; only validated integers (the vector's dimension) and text-search configuration names from
 * the migration's fixed list are written into the text, because the planner must see them as constants: the HNSW
 * index is a partial expression index per dimension, and the GIN index needs a constant tsquery.
 */
export interface Statement {
  text: string;
  values: unknown[];
}

/** The columns a hit returns (never the embedding: it is large and callers do not need it). */
const HIT_COLUMNS = "document_id, id, collection_id, content, metadata, created_at";

/**
 * The lexical candidate cap: at most this many matches per language are ranked. Ranking reads every candidate's
 * tsvector (and its heap page), so ranking all the matches of a query made of common words ("government": 30 000
 * chunks of the 100 000 of the bench) would take 100+ ms. Queries specific enough to match fewer chunks are ranked
 * exactly; beyond the cap the ranking is the best of the first matches in the table's physical order (older chunks
 * first), a known bias traded for a bounded cost (p95 ≤ 20 ms at 100 000 chunks). A GIN index cannot return matches
 * best-first; RUM could.
 */
export const LEXICAL_CANDIDATES = 2000;

/** A checked embedding dimension, safe to write into SQL: pgvector's vectors have 1 to 16 000 dimensions. */
export function checkDimensions(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 16_000) throw new RangeError(`invalid vector dimension: ${n}`);
  return n;
}

function binder(params: unknown[]) {
  return (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
}

/** Which chunks a query may see: its collections, optionally its documents, and its metadata filter. */
function scopeSql(q: SearchQuery, params: unknown[]): string {
  const bind = binder(params);
  const parts = [`collection_id = any(${bind(q.collections.map((c) => c.id))}::uuid[])`];
  if (q.documentIds.length > 0) parts.push(`document_id = any(${bind(q.documentIds)}::uuid[])`);
  if (q.filter) parts.push(metadataFilterSql(q.filter, params));
  return parts.join(" and ");
}

/**
 * The `k` nearest chunks by cosine distance. `vector_dims(embedding) = N` and `embedding::vector(N)` are exactly the
 * predicate and expression of `chunk_embedding_hnsw_<N>`, so the planner can walk that index; with
 * `hnsw.iterative_scan` (set by the backend) it keeps walking until `k` rows pass the scope instead of stopping at
 * `ef_search` candidates. Relaxed order means the rows may come slightly out of order: callers re-sort.
 */
function nearestSql(columns: string, vector: string, n: number, scope: string, k: string): string {
  return `select ${columns}, embedding::vector(${n}) <=> ${vector}::vector(${n}) as distance from chunk
    where vector_dims(embedding) = ${n} and ${scope}
    order by distance limit ${k}`;
}

/**
 * Whether a query uses web-search syntax (a quoted phrase, `or`, `-word`): then it means exactly what it says, every
 * word required. Anything else is read as natural language, where requiring every word of a question finds nothing.
 */
export function usesSearchSyntax(text: string): boolean {
  return /"|(^|\s)-\S|\sor\s/i.test(text);
}

/** The query's lexemes in a configuration, as an OR query; those in `common` left out unless all of them are. */
function anyWordQuery(config: string, text: string, common: string): string {
  const lexemes = `unnest(tsvector_to_array(to_tsvector(${config}, ${text}))) l`;
  return `coalesce(
      (select string_agg(quote_literal(l), ' | ')::tsquery from ${lexemes} where l <> all(${common}::text[])),
      (select string_agg(quote_literal(l), ' | ')::tsquery from ${lexemes}))`;
}

/**
 * The `k` best full-text matches, one arm per language of the scopes: a chunk is matched with the tsquery of its own
 * `ts_config` (the configuration its tsvector was built with).
 * - Web-search syntax (see {@link usesSearchSyntax}): `websearch_to_tsquery`, every word required.
 * - Natural language: a chunk matches when it has **any** of the query's words, except words so common that they
 *   match a large part of the corpus (`common`: PostgreSQL's own statistics of the column, see postgres-backend.ts)
 *   — the part of BM25's IDF a GIN index can use. Ranked by `ts_rank` over those words, halved, plus ½ for a chunk
 *   that has every word: strict matches come first, and scores stay in [0, 1).
 * A query of stop words only has no lexeme and matches nothing — stop words are not in the tsvectors either, so
 * there is nothing to fall back on; hybrid search then ranks by meaning alone. Each arm takes its first
 * {@link LEXICAL_CANDIDATES} matches from the GIN index and ranks them, normalised by 32 to rank/(rank+1), a score
 * in [0, 1) that keeps the order; no length normalisation, as chunks are split to similar sizes.
 * - Natural language is ranked by `ts_rank` (how often each selective word occurs), not by `ts_rank_cd` (how close
 *   together all the words are): on the judged questions of test/rag it finds more relevant documents (recall@10
 *   0.64 against 0.49, MRR 0.62 against 0.48, English queries) and costs a sixth (~2 µs a candidate against ~13 µs
 *   for a 15-word question), which is what keeps whole-question queries within the latency target.
 * - Web-search syntax keeps `ts_rank_cd`, cover density over its required words and phrases.
 * Ties are broken by (document, position), so a ranking is the same in every statement that uses it.
 */
function lexicalTop(q: SearchQuery, columns: string, text: string, common: string, scope: string, k: string): string {
  const languages = [...new Set(q.collections.map((c) => c.language))];
  const strictOnly = usesSearchSyntax(q.text);
  const arms = languages.map((language) => {
    const config = textSearchConfig(language);
    const strict = `websearch_to_tsquery(${config}, ${text})`;
    if (strictOnly)
      return `select ${columns}, ts_rank_cd(tsv, ${strict}, 32) as rank from (
      select ${columns}, tsv from chunk where ts_config = ${config} and tsv @@ ${strict} and ${scope}
      limit ${LEXICAL_CANDIDATES}) m`;
    const any = `(select ${anyWordQuery(config, text, common)})`;
    return `select ${columns}, (ts_rank(tsv, ${any}, 32) + (tsv @@ ${strict})::int) / 2 as rank from (
      select ${columns}, tsv from chunk where ts_config = ${config} and tsv @@ ${any} and ${scope}
      limit ${LEXICAL_CANDIDATES}) m`;
  });
  return `select * from (${arms.join(" union all ")}) a order by rank desc, document_id, id limit ${k}`;
}

/** Semantic search: score = cosine similarity (1 − distance), the threshold applied, then the page. */
export function semanticSql(q: SearchQuery, vector: readonly number[]): Statement {
  const n = checkDimensions(vector.length);
  const values: unknown[] = [];
  const bind = binder(values);
  const vec = bind(vectorLiteral(vector));
  const scope = scopeSql(q, values);
  const k = bind(q.limit + q.offset);
  const threshold = q.scoreThreshold === undefined ? "" : `where 1 - distance >= ${bind(q.scoreThreshold)}`;
  const text = `select ${HIT_COLUMNS}, 1 - distance as score
    from (${nearestSql(HIT_COLUMNS, vec, n, scope, k)}) s ${threshold}
    order by distance, document_id, id limit ${bind(q.limit)} offset ${bind(q.offset)}`;
  return { text, values };
}

/** Lexical search: score = the normalised rank (+1 when every word matched, halved; see lexicalTop). */
export function lexicalSql(q: SearchQuery, common: readonly string[] = []): Statement {
  const values: unknown[] = [];
  const bind = binder(values);
  const text = bind(q.text);
  // Bound only when used: an unused parameter has no type PostgreSQL could infer.
  const words = usesSearchSyntax(q.text) ? "'{}'" : bind(common);
  const scope = scopeSql(q, values);
  const top = lexicalTop(q, HIT_COLUMNS, text, words, scope, bind(q.limit + q.offset));
  return {
    text: `select ${HIT_COLUMNS}, rank as score from (${top}) t order by rank desc, document_id, id
      limit ${bind(q.limit)} offset ${bind(q.offset)}`,
    values,
  };
}

/**
 * Hybrid search in one statement: the semantic top {@link HYBRID_SEMANTIC_DEPTH} and the lexical top
 * {@link HYBRID_WINDOW}, whatever the page (backend.ts says why), as two CTEs, each numbered with `row_number()` in its
 * own order, fused by a full outer join on (document, position) into Σ weight / (rrfK + rank)
 * — the arithmetic of `reciprocalRankFusion` (rrf.ts), in float8, summed in the same order, ties broken the same way
 * (semantic rank first, then lexical rank for chunks only lexical search found). Only the page's rows are read back.
 */
export function hybridSql(q: SearchQuery, vector: readonly number[], common: readonly string[] = []): Statement {
  const n = checkDimensions(vector.length);
  const values: unknown[] = [];
  const bind = binder(values);
  const vec = bind(vectorLiteral(vector));
  const text = bind(q.text);
  // Bound only when used: an unused parameter has no type PostgreSQL could infer.
  const words = usesSearchSyntax(q.text) ? "'{}'" : bind(common);
  const scope = scopeSql(q, values);
  const rrfK = bind(q.rrfK);
  const sql = `with semantic as (
      select document_id, id, row_number() over (order by distance, document_id, id) as rank
      from (${nearestSql("document_id, id", vec, n, scope, bind(HYBRID_SEMANTIC_DEPTH))}) s
    ), lexical as (
      select document_id, id, row_number() over (order by rank desc, document_id, id) as rank
      from (${lexicalTop(q, "document_id, id", text, words, scope, bind(HYBRID_WINDOW))}) l
    ), fused as (
      select coalesce(s.document_id, l.document_id) as document_id, coalesce(s.id, l.id) as id,
        coalesce(${bind(q.semanticWeight)}::float8 / (${rrfK}::float8 + s.rank), 0)
          + coalesce(${bind(q.lexicalWeight)}::float8 / (${rrfK}::float8 + l.rank), 0) as score,
        s.rank is null as lexical_only, coalesce(s.rank, l.rank) as first_rank
      from semantic s full join lexical l on l.document_id = s.document_id and l.id = s.id
      order by score desc, lexical_only, first_rank limit ${bind(q.limit)} offset ${bind(q.offset)}
    )
    select c.document_id, c.id, c.collection_id, c.content, c.metadata, c.created_at, f.score
    from fused f join chunk c on c.document_id = f.document_id and c.id = f.id
    order by f.score desc, f.lexical_only, f.first_rank`;
  return { text: sql, values };
}
