/**
 * The one interface both search engines implement: PostgreSQL (pgvector + full text, the default) and Elasticsearch
 * (when ELASTICSEARCH_URL is set). PostgreSQL's `chunk` table is the source of truth for chunks in both cases; a
 * backend only makes them searchable and finds them. Everything here is already authorized: the SearchService
 * resolves which collections the caller may read before it calls a backend, so a backend never sees a user.
 */

/** A metadata value: what documents and chunks may carry (≤ 16 keys of these). */
export type MetadataValue = string | number | boolean;
export type Metadata = Record<string, MetadataValue>;

/** OpenAI's file-search filter grammar (comparison and compound filters), already validated. */
export type MetadataFilter =
  | { type: "eq" | "ne" | "gt" | "gte" | "lt" | "lte"; key: string; value: MetadataValue }
  | { type: "in" | "nin"; key: string; value: MetadataValue[] }
  | { type: "and" | "or"; filters: MetadataFilter[] };

/**
 * How deep a hybrid ranking goes: the fused ranking is the same whatever the page, so every page is a slice of it (a
 * depth that grew with the offset fused different candidate lists per page, and pages repeated and skipped chunks).
 * Hybrid pages must therefore end within it, as with Elasticsearch's `rrf` retriever (`from + size` ≤
 * `rank_window_size`). 100 = the largest `limit`, so one call can still read the whole ranking. The lexical ranking
 * contributes this many candidates (their number costs nothing: lexical search ranks up to LEXICAL_CANDIDATES matches
 * whatever it keeps), the semantic ranking {@link HYBRID_SEMANTIC_DEPTH}.
 */
export const HYBRID_WINDOW = 100;

/**
 * How many of the semantic ranking's best chunks hybrid search fuses, whatever the page. The semantic top k is an HNSW
 * walk that reads about k / (the scope's share of the index) vectors before k of them pass the scope, so its cost
 * grows with k whatever `ef_search`: on the search bench (100 000 chunks × 384 dimensions, a collection of ten), hybrid
 * took 43–51 ms (p50) with the semantic top 100 and 21–26 ms with the top 30. A rank beyond 30 adds at most
 * weight / (rrfK + 31) to a chunk's score; on test/rag's 64 judged State of the Union queries, embedded with LSA
 * (TF-IDF + SVD: the simulator's embeddings mean nothing), fusing the semantic top 30 ranked as well as the top 100
 * (MRR 0.588 against 0.589, recall@10 0.542 against 0.527), the top 20 worse (MRR 0.566). A query that nothing matches
 * lexically has a ranking this long only.
 */
export const HYBRID_SEMANTIC_DEPTH = 30;

export type SearchMethodName = "semantic" | "lexical" | "hybrid";

/** A chunk as written: the store's row, with its embedding. */
export interface ChunkRecord {
  documentId: string;
  /** Position in the document, from 1. */
  id: number;
  collectionId: string;
  content: string;
  /** The document's metadata merged with the chunk's own. */
  metadata: Metadata;
  embedding: number[];
  createdAt: Date;
}

/** A readable collection to search, with what decides how its text is matched. */
export interface SearchScope {
  id: string;
  /** Full-text language (`french`, `english`, …; see TEXT_SEARCH_LANGUAGES). */
  language: string;
}

export interface SearchQuery {
  text: string;
  /** The query's embedding; absent for lexical search. */
  vector?: number[];
  /** Non-empty: the collections the caller may read among those asked for. */
  collections: SearchScope[];
  /** Only chunks of these documents, when non-empty. */
  documentIds: string[];
  filter?: MetadataFilter;
  method: SearchMethodName;
  limit: number;
  offset: number;
  /** Semantic only: minimum cosine similarity. */
  scoreThreshold?: number;
  /** Hybrid only: Σ weight / (rrfK + rank), rank from 1. */
  rrfK: number;
  semanticWeight: number;
  lexicalWeight: number;
}

export interface SearchHit {
  method: SearchMethodName;
  /** Cosine similarity (semantic), full-text rank (lexical) or fused score (hybrid); higher is closer. */
  score: number;
  chunk: Omit<ChunkRecord, "embedding">;
}

export interface SearchBackend {
  readonly name: "postgres" | "elasticsearch";
  /** Prepares the engine for embeddings of this size (indexes, templates); idempotent, called at start. */
  prepare(dimensions: number): Promise<void>;
  /** Makes chunks searchable. Called before the document is marked ready; a failure fails the ingestion. */
  index(chunks: readonly ChunkRecord[], scopes: ReadonlyMap<string, SearchScope>): Promise<void>;
  /** Forgets chunks: one, a document's, or a collection's. */
  remove(target: { collectionId: string } | { documentId: string; chunkId?: number }): Promise<void>;
  /** Finds chunks, best first. */
  search(query: SearchQuery): Promise<SearchHit[]>;
  close(): Promise<void>;
}
