import type { estypes } from "@elastic/elasticsearch";
import type { MetadataFilter, MetadataValue, SearchHit, SearchMethodName, SearchQuery } from "../backend.js";
import { SearchBackendError } from "./errors.js";
import { type ChunkSource, contentField, encodeNumber } from "./mapping.js";

type Query = estypes.QueryDslQueryContainer;

const MATCH_ALL: Query = { match_all: {} };
const MATCH_NONE: Query = { match_none: {} };

/** The typed `flattened` field that holds a value of this type under `key` (see mapping.ts). */
function typedField(key: string, value: MetadataValue): string {
  const type = typeof value === "string" ? "string" : typeof value === "number" ? "number" : "boolean";
  return `metadata_${type}.${key}`;
}

/** A value as it is indexed: strings as is, numbers order-encoded, booleans as "true"/"false". */
const indexed = (value: MetadataValue): string =>
  typeof value === "number" ? encodeNumber(value) : typeof value === "string" ? value : String(value);

const not = (q: Query): Query =>
  q === MATCH_NONE ? MATCH_ALL : q === MATCH_ALL ? MATCH_NONE : { bool: { must_not: [q] } };

/** `in`: one `terms` per value type present, any of them matching. */
function anyOf(key: string, values: readonly MetadataValue[]): Query {
  const byField = new Map<string, string[]>();
  for (const v of values) {
    const field = typedField(key, v);
    byField.set(field, [...(byField.get(field) ?? []), indexed(v)]);
  }
  const clauses: Query[] = [...byField].map(([field, terms]) => ({ terms: { [field]: terms } }));
  if (clauses.length === 0) return MATCH_NONE;
  return clauses.length === 1 ? (clauses[0] as Query) : { bool: { should: clauses, minimum_should_match: 1 } };
}

/**
 * OpenAI's filter grammar as an Elasticsearch query, with the PostgreSQL backend's semantics (filter-sql.ts):
 * type-exact comparisons; `ne`/`nin` are `must_not`, so they match chunks lacking the key; ranges need the key with the
 * value's type; an empty `and` (and `nin []`) matches everything, an empty `or` (and `in []`) nothing. Compound
 * filters are `bool` in filter context (`filter` for and, `should` + `minimum_should_match: 1` for or): they never
 * score, and Elasticsearch can cache them.
 */
export function metadataQuery(filter: MetadataFilter): Query {
  switch (filter.type) {
    case "and":
      return filter.filters.length === 0 ? MATCH_ALL : { bool: { filter: filter.filters.map(metadataQuery) } };
    case "or":
      return filter.filters.length === 0
        ? MATCH_NONE
        : { bool: { should: filter.filters.map(metadataQuery), minimum_should_match: 1 } };
    case "eq":
      return { term: { [typedField(filter.key, filter.value)]: indexed(filter.value) } };
    case "ne":
      return not({ term: { [typedField(filter.key, filter.value)]: indexed(filter.value) } });
    case "in":
      return anyOf(filter.key, filter.value);
    case "nin":
      return not(anyOf(filter.key, filter.value));
    case "gt":
    case "gte":
    case "lt":
    case "lte":
      return { range: { [typedField(filter.key, filter.value)]: { [filter.type]: indexed(filter.value) } } };
  }
}

/**
 * The filters every request carries. The `collection_id` terms come first and always: they are the authorization
 * boundary (the service resolved which collections the caller may read), so no search may run without them.
 */
export function scopeFilters(query: SearchQuery): Query[] {
  const filters: Query[] = [{ terms: { collection_id: query.collections.map((c) => c.id) } }];
  if (query.documentIds.length > 0) filters.push({ terms: { document_id: query.documentIds } });
  if (query.filter) filters.push(metadataQuery(query.filter));
  return filters;
}

/** What a hit needs from `_source`: never the embedding, nor the typed copies of the metadata. */
export const SOURCE_FIELDS = [
  "collection_id",
  "document_id",
  "chunk_id",
  "language",
  "content_*",
  "metadata",
  "created",
];

/** Elasticsearch refuses more than 10,000 candidates per shard. */
const MAX_CANDIDATES = 10_000;

/**
 * A kNN search for the window [from, from + size): top-level `knn` collects the global top k = from + size (`from`
 * and `size` then page within it; `size` must be set, it defaults to 10), from max(10 × k, 100) candidates per shard
 * (the reference system's ratio). The scope filter is inside `knn`, a pre-filter: filtering after the kNN would return
 * fewer than k hits, or none, when the caller's collections are a small part of the index. `similarity` is the
 * minimum *cosine* (Elasticsearch compares it to the raw similarity, not to `_score`), so `scoreThreshold` means what
 * it means on PostgreSQL.
 */
export function semanticRequest(
  index: string,
  query: SearchQuery,
  window: { from: number; size: number },
  minCosine?: number,
): estypes.SearchRequest {
  const vector = query.vector;
  if (!vector) throw new SearchBackendError(`a ${query.method} search needs a query vector`, { retryable: false });
  const k = Math.min(window.from + window.size, MAX_CANDIDATES);
  return {
    index,
    // An index exists only once a chunk of that size was prepared or written: none means no such chunks.
    ignore_unavailable: true,
    from: window.from,
    size: window.size,
    track_total_hits: false,
    _source: SOURCE_FIELDS,
    knn: {
      field: "embedding",
      query_vector: vector,
      k,
      num_candidates: Math.min(Math.max(10 * k, 100), MAX_CANDIDATES),
      filter: { bool: { filter: scopeFilters(query) } },
      ...(minCosine === undefined ? {} : { similarity: minCosine }),
    },
  };
}

/**
 * A BM25 search on the text fields of the scopes' languages. A chunk's text lives only in its collection's language
 * field, so each collection is matched with its own analyzer even when the scopes mix languages. Terms are OR-ed
 * (BM25 ranks chunks with more of them first); no fuzziness, like PostgreSQL's full text. The score is BM25's: its
 * scale differs from PostgreSQL's `ts_rank`, only the order compares.
 */
export function lexicalRequest(
  index: string,
  query: SearchQuery,
  window: { from: number; size: number },
): estypes.SearchRequest {
  const fields = [...new Set(query.collections.map((c) => contentField(c.language)))];
  return {
    index,
    from: window.from,
    size: window.size,
    track_total_hits: false,
    _source: SOURCE_FIELDS,
    query: { bool: { must: [{ multi_match: { query: query.text, fields } }], filter: scopeFilters(query) } },
  };
}

/** A hit back as the interface's SearchHit, with the score the caller expects. */
export function toSearchHit(
  hit: estypes.SearchHit<Partial<ChunkSource>>,
  method: SearchMethodName,
  score: number,
): SearchHit {
  const s = hit._source;
  if (!s?.document_id || s.chunk_id === undefined || !s.collection_id)
    throw new SearchBackendError(`Elasticsearch hit ${hit._id ?? "?"} lacks its chunk fields`, { retryable: false });
  return {
    method,
    score,
    chunk: {
      documentId: s.document_id,
      id: s.chunk_id,
      collectionId: s.collection_id,
      content: (s.language && s[`content_${s.language}`]) ?? "",
      metadata: s.metadata ?? {},
      createdAt: new Date(s.created ?? 0),
    },
  };
}

/** Elasticsearch scores a cosine match (1 + cos) / 2 so that scores stay positive; this is the cosine back. */
export const cosineFromScore = (score: number) => 2 * score - 1;
