import { create, type JsonValue, toJson } from "@bufbuild/protobuf";
import { timestampFromDate, ValueSchema } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { ChunkSchema } from "../../gen/passerelle/collections/v1/resources_pb.js";
import {
  ComparisonOperator,
  CompoundOperator,
  type MetadataFilter as FilterMessage,
  SearchMethod,
  type SearchRequest,
  SearchResponseSchema,
  type SearchService,
} from "../../gen/passerelle/search/v1/search_service_pb.js";
import type { CollectionStore } from "../collections/collection-store.js";
import { type Principal, principalOf } from "../platform/context.js";
import { failedPrecondition, invalidArgument, notFound, unavailable } from "../platform/errors.js";
import { isUuid } from "../platform/paging.js";
import {
  HYBRID_WINDOW,
  type MetadataFilter,
  type MetadataValue,
  type SearchBackend,
  type SearchMethodName,
  type SearchQuery,
} from "./backend.js";

/** Embeds one query with the platform's embeddings model, billed to the caller; returns its usage too. */
export type EmbedQuery = (
  principal: Principal,
  text: string,
  signal: AbortSignal,
) => Promise<{
  vector: number[];
  promptTokens: number;
  model: string;
  cost?: number;
  carbon?: { kwh?: { min: number; max: number }; kgco2eq?: { min: number; max: number } };
}>;

export interface SearchDeps {
  store: CollectionStore;
  backend: SearchBackend;
  embedQuery: EmbedQuery;
  embeddingsModel: string | undefined;
}

const MAX_IDS = 100;
const MAX_QUERY_CHARS = 8_192;
const MAX_FILTERS = 16;
const MAX_DEPTH = 4;

const METHOD: Readonly<Record<SearchMethodName, SearchMethod>> = {
  semantic: SearchMethod.SEMANTIC,
  lexical: SearchMethod.LEXICAL,
  hybrid: SearchMethod.HYBRID,
};
const COMPARISON: Readonly<Partial<Record<ComparisonOperator, string>>> = {
  [ComparisonOperator.EQ]: "eq",
  [ComparisonOperator.NE]: "ne",
  [ComparisonOperator.GT]: "gt",
  [ComparisonOperator.GTE]: "gte",
  [ComparisonOperator.LT]: "lt",
  [ComparisonOperator.LTE]: "lte",
  [ComparisonOperator.IN]: "in",
  [ComparisonOperator.NIN]: "nin",
};

const NUL = "\u0000";

/** A NUL character, which PostgreSQL's text cannot hold, where it would be compared or searched. */
function nulIn(param: string) {
  return invalidArgument(
    `'${param}' contains a NUL character (\\u0000), which cannot be searched.`,
    param,
    "INVALID_TEXT",
  );
}

const scalar = (v: JsonValue): v is MetadataValue =>
  typeof v === "string" || typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v));

/** The filter grammar checked once here, so that every backend receives the same valid tree. */
export function filterOf(f: FilterMessage, path = "filter", depth = 1): MetadataFilter {
  if (depth > MAX_DEPTH) throw invalidArgument(`'${path}' nests more than ${MAX_DEPTH} levels.`, path);
  if (f.kind.case === "comparison") {
    const c = f.kind.value;
    const type = COMPARISON[c.operator];
    if (!type)
      throw invalidArgument(`'${path}.type' must be one of eq, ne, gt, gte, lt, lte, in, nin.`, `${path}.type`);
    if (!c.key) throw invalidArgument(`'${path}.key' is required.`, `${path}.key`);
    if (c.key.includes(NUL)) throw nulIn(`${path}.key`);
    const value = c.value ? toJson(ValueSchema, c.value) : null;
    if ((Array.isArray(value) ? value : [value]).some((v) => typeof v === "string" && v.includes(NUL)))
      throw nulIn(`${path}.value`);
    if (type === "in" || type === "nin") {
      if (!Array.isArray(value) || value.length === 0 || value.length > 100 || !value.every(scalar))
        throw invalidArgument(
          `'${path}.value' must be a list of 1 to 100 strings, numbers or booleans for '${type}'.`,
          `${path}.value`,
        );
      return { type, key: c.key, value };
    }
    if (value === null || !scalar(value))
      throw invalidArgument(`'${path}.value' must be a string, a number or a boolean.`, `${path}.value`);
    if ((type === "gt" || type === "gte" || type === "lt" || type === "lte") && typeof value === "boolean")
      throw invalidArgument(`'${path}.value' cannot be a boolean for '${type}'.`, `${path}.value`);
    return { type: type as "eq", key: c.key, value };
  }
  if (f.kind.case === "compound") {
    const c = f.kind.value;
    const type = c.operator === CompoundOperator.AND ? "and" : c.operator === CompoundOperator.OR ? "or" : undefined;
    if (!type) throw invalidArgument(`'${path}.type' must be 'and' or 'or'.`, `${path}.type`);
    if (c.filters.length === 0 || c.filters.length > MAX_FILTERS)
      throw invalidArgument(`'${path}.filters' must hold 1 to ${MAX_FILTERS} filters.`, `${path}.filters`);
    return { type, filters: c.filters.map((x, i) => filterOf(x, `${path}.filters[${i}]`, depth + 1)) };
  }
  throw invalidArgument(`'${path}' must be a comparison or a compound filter.`, path);
}

function ids(list: readonly string[], param: string, kind: string): string[] {
  if (list.length > MAX_IDS) throw invalidArgument(`'${param}' may name at most ${MAX_IDS} ${kind}s.`, param);
  for (const id of list)
    if (!isUuid(id)) throw invalidArgument(`'${param}' holds an invalid ${kind} id '${id.slice(0, 60)}'.`, param);
  return [...new Set(list)];
}

/** The request's query, validated; the collections are resolved by the service. */
export function queryOf(req: SearchRequest): Omit<SearchQuery, "collections" | "vector"> {
  const text = req.query.trim();
  if (!text) throw invalidArgument("'query' must not be empty.", "query");
  if (req.query.length > MAX_QUERY_CHARS)
    throw invalidArgument(`'query' is longer than ${MAX_QUERY_CHARS} characters.`, "query");
  const method: SearchMethodName =
    req.method === SearchMethod.LEXICAL ? "lexical" : req.method === SearchMethod.HYBRID ? "hybrid" : "semantic";
  // Refused before the query is embedded (and billed): only meaning alone never compares the text itself.
  if (method !== "semantic" && text.includes(NUL)) throw nulIn("query");
  const limit = req.limit === 0 ? 10 : req.limit;
  if (limit < 1 || limit > 100) throw invalidArgument("'limit' must be between 1 and 100.", "limit");
  if (req.offset < 0 || req.offset > 10_000) throw invalidArgument("'offset' must be between 0 and 10000.", "offset");
  if (method === "hybrid" && req.offset + limit > HYBRID_WINDOW)
    throw invalidArgument(
      `'offset' + 'limit' must be at most ${HYBRID_WINDOW} for hybrid search: it ranks its first ${HYBRID_WINDOW} results only.`,
      "offset",
    );
  if (req.scoreThreshold !== undefined) {
    if (method !== "semantic")
      throw invalidArgument("'score_threshold' applies to semantic search only.", "score_threshold");
    if (!(req.scoreThreshold >= 0 && req.scoreThreshold <= 1))
      throw invalidArgument("'score_threshold' must be between 0 and 1.", "score_threshold");
  }
  const rrfK = req.rrfK === 0 ? 60 : req.rrfK;
  if (rrfK < 1 || rrfK > 16_384) throw invalidArgument("'rrf_k' must be between 1 and 16384.", "rrf_k");
  const weight = (w: number | undefined, param: string) => {
    if (w === undefined) return 1;
    if (!(w >= 0 && w <= 100)) throw invalidArgument(`'${param}' must be between 0 and 100.`, param);
    return w;
  };
  return {
    text,
    documentIds: ids(req.documentIds, "document_ids", "document"),
    filter: req.filter ? filterOf(req.filter) : undefined,
    method,
    limit,
    offset: req.offset,
    scoreThreshold: req.scoreThreshold,
    rrfK,
    semanticWeight: weight(req.semanticWeight, "semantic_weight"),
    lexicalWeight: weight(req.lexicalWeight, "lexical_weight"),
  };
}

/**
 * Refuses a collection whose chunks were embedded with another model than the platform's current one: its vectors
 * and the query's are not comparable (often not even of the same size), so a semantic search would silently find
 * nothing and new chunks would mix two vector spaces in one collection. Also used by CollectionService.
 */
export function requireEmbeddingsModel(
  collection: { id: string; name: string; embeddingsModel: string },
  configured: string,
): void {
  if (collection.embeddingsModel === configured) return;
  throw failedPrecondition(
    `Collection '${collection.name}' (${collection.id}) was embedded with '${collection.embeddingsModel}', but the ` +
      `platform now embeds with '${configured}' (PASSERELLE_RAG_EMBEDDINGS_MODEL): its vectors cannot be compared ` +
      `with new ones. Search it with method 'lexical', or create a new collection and upload its documents again; ` +
      `an operator may also set the model back to '${collection.embeddingsModel}'.`,
    "EMBEDDINGS_MODEL_CHANGED",
  );
}

/** SearchService: retrieval over the collections the caller may read (theirs and the public ones). */
export function createSearchService(deps: SearchDeps): ServiceImpl<typeof SearchService> {
  return {
    async search(req, ctx) {
      const p = principalOf(ctx);
      if (!deps.embeddingsModel)
        throw failedPrecondition(
          "Search is not enabled: the operator has not set PASSERELLE_RAG_EMBEDDINGS_MODEL.",
          "RAG_NOT_CONFIGURED",
        );
      const query = queryOf(req);
      const asked = ids(req.collectionIds, "collection_ids", "collection");
      const model = deps.embeddingsModel;
      let collections = await deps.store.readableCollections(p.userId, asked);
      if (asked.length > 0 && collections.length < asked.length) {
        const found = new Set(collections.map((c) => c.id));
        const missing = asked.find((id) => !found.has(id)) as string;
        throw notFound("collection", missing);
      }
      // Lexical search reads no vectors: any collection will do. Otherwise a collection asked for by id that was
      // embedded with another model is refused; one only swept in by an unscoped search (say, someone's public
      // collection) is left out rather than failing the caller's whole search.
      if (query.method !== "lexical") {
        if (asked.length > 0) for (const c of collections) requireEmbeddingsModel(c, model);
        else collections = collections.filter((c) => c.embeddingsModel === model);
      }
      if (query.documentIds.length > 0) {
        const readable = await deps.store.readableDocumentIds(p.userId, query.documentIds);
        const missing = query.documentIds.find((id) => !readable.has(id));
        if (missing) throw notFound("document", missing);
      }
      if (collections.length === 0) return create(SearchResponseSchema, { results: [] });
      let usage: Awaited<ReturnType<EmbedQuery>> | undefined;
      if (query.method !== "lexical") usage = await deps.embedQuery(p, query.text, ctx.signal);
      const hits = await deps.backend
        .search({
          ...query,
          vector: usage?.vector,
          collections: collections.map((c) => ({ id: c.id, language: c.language })),
        })
        .catch((err: unknown) => {
          // An engine that is down or overloaded (Elasticsearch) is worth retrying; anything else is ours.
          if ((err as { retryable?: boolean })?.retryable === true)
            throw unavailable("The search engine is temporarily unavailable.", "SEARCH_UNAVAILABLE", {
              retryAfterSeconds: 1,
              cause: err,
            });
          throw err;
        });
      const names = await deps.store.documentNames([...new Set(hits.map((h) => h.chunk.documentId))]);
      return create(SearchResponseSchema, {
        results: hits.map((h) => ({
          method: METHOD[h.method],
          score: h.score,
          documentName: names.get(h.chunk.documentId) ?? "",
          chunk: create(ChunkSchema, {
            id: BigInt(h.chunk.id),
            documentId: h.chunk.documentId,
            collectionId: h.chunk.collectionId,
            content: h.chunk.content,
            metadata: h.chunk.metadata,
            // A backend may give the time as text (MikroORM's pool parses no timestamps).
            createTime: timestampFromDate(new Date(h.chunk.createdAt)),
          }),
        })),
        usage: usage
          ? {
              promptTokens: BigInt(usage.promptTokens),
              totalTokens: BigInt(usage.promptTokens),
              model: usage.model,
              cost: usage.cost,
              carbon: usage.carbon,
            }
          : { promptTokens: 0n, totalTokens: 0n },
      });
    },
  };
}
