import { type Client, createClient, createContextValues, type Transport } from "@connectrpc/connect";
import type pg from "pg";
import type { Logger } from "pino";
import { EmbeddingsService } from "../../gen/passerelle/embeddings/v1/embeddings_service_pb.js";
import { SearchService } from "../../gen/passerelle/search/v1/search_service_pb.js";
import type { CoreConfig } from "../config.js";
import type { Retrieve } from "../inference/index.js";
import { kPrincipal, kUsageEndpoint, type Principal } from "../platform/context.js";
import type { SearchBackend } from "../search/backend.js";
import { createSearchService, type EmbedQuery } from "../search/search-service.js";
import { createCollectionService, type EmbedAs } from "./collection-service.js";
import { createCollectionStore } from "./collection-store.js";
import { createParserPool } from "./ingest/index.js";
import { createIngestion } from "./ingestion.js";

/**
 * A document still queued or ingesting whose row has not changed for this long belongs to a process that died: the
 * live ones touch theirs ten times as often (the ingestion's heartbeat).
 */
const STALE_MS = 10 * 60_000;

export { createCollectionService } from "./collection-service.js";
export { createCollectionStore } from "./collection-store.js";

/**
 * Collections, ingestion and search. Embeddings go through the EmbeddingsService (limits, budgets, usage records
 * under `documents` and `search`) over a transport to this process's own services, given once the core has bound
 * them (`connect`): the RAG domain calls the embeddings domain the way any client would.
 */
export function setupCollections(deps: {
  pool: pg.Pool;
  backend: SearchBackend;
  settings: CoreConfig["rag"];
  logger: Logger;
}) {
  const store = createCollectionStore(deps.pool);
  const parser = createParserPool({ maxThreads: deps.settings.parserThreads });
  const logger = deps.logger.child({ domain: "collections" });
  let clients: { embeddings: Client<typeof EmbeddingsService>; search: Client<typeof SearchService> } | undefined;
  const model = deps.settings.embeddingsModel;
  const prepared = new Map<number, Promise<void>>();
  let sweep: NodeJS.Timeout | undefined;

  /** The backend is prepared for a vector size the first time one is seen (the model may be registered after start). */
  function prepare(dims: number): Promise<void> {
    let p = prepared.get(dims);
    if (!p) {
      p = deps.backend.prepare(dims).catch((err) => {
        prepared.delete(dims);
        throw err;
      });
      prepared.set(dims, p);
    }
    return p;
  }

  /** Context of a call made on a user's behalf: their principal, and the usage endpoint it is recorded under. */
  function onBehalfOf(principal: Principal, endpoint: string) {
    const values = createContextValues();
    values.set(kPrincipal, principal);
    values.set(kUsageEndpoint, endpoint);
    return values;
  }

  async function embedMany(principal: Principal, endpoint: string, texts: string[], signal: AbortSignal) {
    if (!clients || !model) throw new Error("collections: embeddings are not connected");
    const res = await clients.embeddings.createEmbeddings(
      { model, input: { case: "texts", value: { texts } } },
      { signal, contextValues: onBehalfOf(principal, endpoint) },
    );
    const vectors = new Array<number[]>(texts.length);
    for (const e of res.data) vectors[e.index] = e.embedding;
    const dims = vectors[0]?.length ?? 0;
    if (vectors.some((v) => !v || v.length !== dims) || dims === 0)
      throw new Error("collections: the embeddings model answered vectors of mixed or no size");
    await prepare(dims);
    return { vectors, res };
  }

  const embed: EmbedAs = async (principal, endpoint, texts, signal) =>
    (await embedMany(principal, endpoint, texts, signal)).vectors;
  const embedQuery: EmbedQuery = async (principal, text, signal) => {
    const { vectors, res } = await embedMany(principal, "search", [text], signal);
    return {
      vector: vectors[0] as number[],
      promptTokens: res.usage?.promptTokens ?? 0,
      model: res.model,
      cost: res.usage?.cost,
      carbon: res.usage?.carbon,
    };
  };

  /** The chat `search` tool: a SearchService call as the chat's caller. */
  const retrieve: Retrieve = async (principal, request, signal) => {
    if (!clients) throw new Error("collections: search is not connected");
    const res = await clients.search.search(request, {
      signal,
      contextValues: onBehalfOf(principal, "search"),
    });
    return res.results;
  };

  const ingestion = createIngestion({
    store,
    backend: deps.backend,
    logger,
    batch: deps.settings.embeddingsBatch,
    concurrency: deps.settings.embeddingsConcurrency,
    maxActive: deps.settings.ingestConcurrency,
    heartbeatMs: STALE_MS / 10,
    split: (text, options, opts) => parser.split(text, options, opts),
  });
  const collectionService = createCollectionService({
    store,
    backend: deps.backend,
    ingestion,
    parser,
    embed,
    embeddingsModel: model,
    maxFileBytes: deps.settings.maxFileBytes,
  });
  const searchService = createSearchService({ store, backend: deps.backend, embedQuery, embeddingsModel: model });

  return {
    store,
    ingestion,
    /** Undefined when RAG is not configured: the chat `search` tool is then refused. */
    retrieve: model ? retrieve : undefined,
    collectionService,
    searchService,
    /** Gives the transport to this process's services, once they are bound. */
    connect(t: Transport) {
      clients = { embeddings: createClient(EmbeddingsService, t), search: createClient(SearchService, t) };
    },
    /**
     * Fails documents a stopped process left mid-ingestion (their files were never kept). Only those untouched for
     * `staleMs`: a live process, this one or another, keeps touching the documents it holds.
     */
    async recover(staleMs = STALE_MS): Promise<number> {
      const n = await store.failInterrupted(
        "Ingestion was interrupted by a server restart; upload again.",
        new Date(Date.now() - staleMs),
      );
      if (n > 0) logger.warn({ documents: n }, "documents left mid-ingestion marked failed");
      return n;
    },
    /** Every minute, documents whose ingestion stalled for ten minutes (their process died) are failed. */
    startSweep(everyMs = 60_000) {
      sweep ??= setInterval(() => {
        this.recover().catch((err) => logger.warn({ err }, "ingestion sweep failed"));
      }, everyMs).unref();
    },
    async close() {
      if (sweep) clearInterval(sweep);
      await ingestion.close();
      await parser.close();
      await deps.backend.close();
    },
  };
}
