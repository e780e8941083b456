import type { Client, estypes } from "@elastic/elasticsearch";
import {
  type ChunkRecord,
  HYBRID_SEMANTIC_DEPTH,
  HYBRID_WINDOW,
  type SearchBackend,
  type SearchHit,
  type SearchQuery,
  type SearchScope,
} from "../backend.js";
import { reciprocalRankFusion } from "../rrf.js";
import { elasticsearchErrorType, isRetryableStatus, SearchBackendError, toSearchBackendError } from "./errors.js";
import {
  type ChunkSource,
  chunkDocument,
  chunkDocumentId,
  contentField,
  indexName,
  indexPattern,
  indexTemplate,
  vectorMapping,
} from "./mapping.js";
import { cosineFromScore, lexicalRequest, semanticRequest, toSearchHit } from "./query.js";

export interface ElasticsearchBackendOptions {
  /** Owned by the backend from now on: `close()` closes it. */
  client: Client;
  /** Indices are `<indexPrefix>-<dims>`, the template `<indexPrefix>`. Default "passerelle-chunks". */
  indexPrefix?: string;
  logger?: { warn(obj: object, msg: string): void };
  /**
   * When written chunks become searchable. "wait_for" (default): `index()` returns once they are, so a document
   * marked ready right after is found at once, without forcing extra refreshes. `true` forces a refresh (tests),
   * `false` leaves it to the index's refresh interval (bulk loads). `remove()` refreshes unless this is `false`
   * (delete-by-query has no "wait_for").
   */
  refresh?: "wait_for" | boolean;
  /** Chunks per bulk request (default 500: ~10 MiB at 1,024 dimensions, well under `http.max_content_length`). */
  bulkSize?: number;
}

/** The language a chunk is analysed in: its collection's. */
function languageOf(chunk: ChunkRecord, scopes: ReadonlyMap<string, SearchScope>): string {
  const scope = scopes.get(chunk.collectionId);
  if (!scope) throw new SearchBackendError(`no scope given for collection ${chunk.collectionId}`, { retryable: false });
  return scope.language;
}

/**
 * Search on Elasticsearch (see mapping.ts for the layout, query.ts for the requests). Hybrid search fuses a kNN and a
 * BM25 ranking here, with the same reciprocal rank fusion as PostgreSQL (rrf.ts), rather than with Elasticsearch's
 * `rrf` retriever: that retriever is not in the free Basic licence of self-managed clusters (Platinum, later
 * Enterprise), and per-retriever weights only came in recent 9.x releases.
 */
export function createElasticsearchBackend(options: ElasticsearchBackendOptions): SearchBackend {
  const { client, logger } = options;
  const prefix = options.indexPrefix ?? "passerelle-chunks";
  const refresh = options.refresh ?? "wait_for";
  const bulkSize = options.bulkSize ?? 500;

  async function call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw toSearchBackendError(operation, err);
    }
  }

  /** Best effort after a failed write: deletes by `_id` (real time, unlike a query that would need a refresh). */
  async function forget(chunks: readonly ChunkRecord[]): Promise<void> {
    try {
      await client.bulk({
        refresh: refresh === false ? false : "wait_for",
        operations: chunks.map((c) => ({
          delete: { _index: indexName(prefix, c.embedding.length), _id: chunkDocumentId(c) },
        })),
      });
    } catch (err) {
      const documents = [...new Set(chunks.map((c) => c.documentId))];
      logger?.warn(
        { err: toSearchBackendError("bulk delete", err), documents },
        "could not delete partly indexed chunks",
      );
    }
  }

  async function writeBatch(batch: readonly ChunkRecord[], scopes: ReadonlyMap<string, SearchScope>, last: boolean) {
    const operations = batch.flatMap((chunk) => {
      const action = { index: { _index: indexName(prefix, chunk.embedding.length), _id: chunkDocumentId(chunk) } };
      return [action, chunkDocument(chunk, languageOf(chunk, scopes))];
    });
    const response = await call("bulk index", () =>
      client.bulk<ChunkSource>({ refresh: last ? refresh : false, operations }),
    );
    if (!response.errors) return;
    const failed = response.items.map((item) => Object.values(item)[0]).filter((r) => r?.error);
    const first = failed[0] as estypes.BulkResponseItem;
    throw new SearchBackendError(
      `Elasticsearch bulk index failed for ${failed.length} of ${batch.length} chunks, first ${first._id}: ` +
        `HTTP ${first.status} (${first.error?.type ?? "unknown"})`,
      { retryable: isRetryableStatus(first.status), status: first.status, cause: first.error },
    );
  }

  async function ranked(
    request: estypes.SearchRequest,
    toScore: (score: number) => number,
    method: SearchHit["method"],
  ) {
    const response = await client.search<Partial<ChunkSource>>(request);
    return response.hits.hits.map((hit) => toSearchHit(hit, method, toScore(hit._score ?? 0)));
  }

  const semanticIndex = (query: SearchQuery) => indexName(prefix, query.vector?.length ?? 0);
  const asCosine = cosineFromScore;
  const asIs = (score: number) => score;

  return {
    name: "elasticsearch",

    async prepare(dimensions) {
      if (!Number.isInteger(dimensions) || dimensions < 1)
        throw new SearchBackendError(`invalid embedding size: ${dimensions}`, { retryable: false });
      // Put every time: templates only apply to indices created later, and this keeps the template current.
      await call("put index template", () => client.indices.putIndexTemplate(indexTemplate(prefix)));
      try {
        // The whole field definition, so the result does not depend on how a field in both request and template merges.
        await client.indices.create({
          index: indexName(prefix, dimensions),
          mappings: { properties: { embedding: vectorMapping(dimensions) } },
        });
      } catch (err) {
        // Several processes may start together: whoever comes second finds the index there, which is what it wanted.
        if (elasticsearchErrorType(err) === "resource_already_exists_exception") return;
        throw toSearchBackendError("create index", err);
      }
    },

    async index(chunks, scopes) {
      // Checked before anything is written, so that a caller's mistake leaves nothing to clean up.
      for (const chunk of chunks) contentField(languageOf(chunk, scopes));
      try {
        for (let start = 0; start < chunks.length; start += bulkSize)
          await writeBatch(chunks.slice(start, start + bulkSize), scopes, start + bulkSize >= chunks.length);
      } catch (err) {
        // The ingestion fails and the document will not be marked ready: leave none of its chunks searchable.
        await forget(chunks);
        throw err;
      }
    },

    async remove(target) {
      const query: estypes.QueryDslQueryContainer =
        "collectionId" in target
          ? { term: { collection_id: target.collectionId } }
          : {
              bool: {
                filter: [
                  { term: { document_id: target.documentId } },
                  ...(target.chunkId === undefined ? [] : [{ term: { chunk_id: target.chunkId } }]),
                ],
              },
            };
      const response = await call("delete by query", () =>
        // Every index: the chunks of a collection or document may sit in several embedding sizes' indices.
        client.deleteByQuery({ index: indexPattern(prefix), query, conflicts: "proceed", refresh: refresh !== false }),
      );
      if (response.failures && response.failures.length > 0)
        // Idempotent, so a retry is safe; shard failures are usually transient.
        throw new SearchBackendError(`Elasticsearch delete by query failed with ${response.failures.length} failures`, {
          retryable: true,
          cause: response.failures[0],
        });
    },

    async search(query) {
      // No readable collection, nothing to find: never send a query without the collection filter.
      if (query.collections.length === 0 || query.limit <= 0) return [];
      const { offset, limit } = query;
      return call("search", async () => {
        if (query.method === "semantic")
          return ranked(
            semanticRequest(semanticIndex(query), query, { from: offset, size: limit }, query.scoreThreshold),
            asCosine,
            "semantic",
          );
        if (query.method === "lexical")
          return ranked(lexicalRequest(indexPattern(prefix), query, { from: offset, size: limit }), asIs, "lexical");
        // Hybrid: the same rankings whatever the page, so that every page is a slice of one fused ranking (a depth
        // growing with the offset fused other candidates per page: repeats and gaps); as deep as PostgreSQL's.
        const [semantic, lexical] = await Promise.all([
          ranked(
            semanticRequest(semanticIndex(query), query, { from: 0, size: HYBRID_SEMANTIC_DEPTH }),
            asCosine,
            "semantic",
          ),
          ranked(lexicalRequest(indexPattern(prefix), query, { from: 0, size: HYBRID_WINDOW }), asIs, "lexical"),
        ]);
        const fused = reciprocalRankFusion(
          [
            { hits: semantic, weight: query.semanticWeight },
            { hits: lexical, weight: query.lexicalWeight },
          ],
          query.rrfK,
        );
        return fused.slice(offset, offset + limit);
      });
    },

    async close() {
      await client.close();
    },
  };
}
