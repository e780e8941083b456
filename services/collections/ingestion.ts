import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import type { ChunkRecord, Metadata, SearchBackend } from "../search/backend.js";
import { insertChunks } from "../search/postgres/index.js";
import type { CollectionStore, DocumentStatus } from "./collection-store.js";
import { IngestError, type ParsedDocument, type SplitOptions } from "./ingest/index.js";

/** Embeds texts with the platform's embeddings model on behalf of a user (an EmbeddingsService call). */
export type EmbedTexts = (texts: string[], signal: AbortSignal) => Promise<number[][]>;

export interface IngestionDeps {
  store: CollectionStore;
  backend: SearchBackend;
  logger: Logger;
  /** Chunks per embeddings call. */
  batch: number;
  /** Embeddings calls of one document in flight at once. */
  concurrency: number;
  /** Documents ingested at once by this process; the rest wait in order. */
  maxActive: number;
  /**
   * How often the documents this process holds (queued or running) are marked alive: well under the sweep's
   * staleness, or the sweep takes a document waiting in this queue for a dead process's.
   */
  heartbeatMs: number;
  /** Splits a text (in a worker thread: parser-pool.ts). */
  split: (text: string, options: SplitOptions, opts: { signal: AbortSignal }) => Promise<string[]>;
}

/** One document's work: its parsed text, how to split it, and who pays for its embeddings. */
export interface IngestJob {
  documentId: string;
  collectionId: string;
  language: string;
  parsed: ParsedDocument;
  metadata: Metadata;
  split: SplitOptions;
  embed: EmbedTexts;
}

/** What a failure says to the document's owner: our reasons verbatim, anything else without internals. */
function reasonOf(err: unknown): string {
  if (err instanceof IngestError) return err.message;
  const e = err as { code?: unknown; rawMessage?: unknown; message?: unknown };
  // A ConnectError from the embeddings service (limits, budget, upstream): its message is meant for the caller.
  if (typeof e?.rawMessage === "string" && typeof e.code === "number" && e.code !== 13 && e.code !== 2)
    return `Embedding failed: ${e.rawMessage}`;
  return "Ingestion failed because of an internal error.";
}

/**
 * Runs ingestions in the background, at most `maxActive` at once: split → embed in batches (bounded concurrency) →
 * make searchable → write the chunks and mark the document ready in one transaction. Any failure marks the
 * document failed with its reason and leaves no chunk of it searchable. Every status change is announced to
 * watchers in this process (`changes`); watchers elsewhere poll.
 */
export function createIngestion(deps: IngestionDeps) {
  const changes = new EventEmitter();
  changes.setMaxListeners(0);
  const queue: IngestJob[] = [];
  const active = new Set<Promise<void>>();
  /** Documents of the running jobs. */
  const running = new Set<string>();
  const stop = new AbortController();
  const heartbeat = setInterval(() => {
    const held = [...running, ...queue.map((j) => j.documentId)];
    deps.store.touch(held).catch((err) => deps.logger.warn({ err }, "ingestion heartbeat failed"));
  }, deps.heartbeatMs).unref();

  const announce = (id: string) => changes.emit(id);
  async function setStatus(id: string, status: DocumentStatus, progress: number, reason = "") {
    await deps.store.setStatus(id, status, progress, reason);
    announce(id);
  }

  async function embedAll(job: IngestJob, texts: string[]): Promise<number[][]> {
    const batches: string[][] = [];
    for (let i = 0; i < texts.length; i += deps.batch) batches.push(texts.slice(i, i + deps.batch));
    const out = new Array<number[][]>(batches.length);
    let next = 0;
    let done = 0;
    let lastAnnounced = 0;
    const worker = async () => {
      while (next < batches.length) {
        const i = next++;
        out[i] = await job.embed(batches[i] as string[], stop.signal);
        done++;
        const progress = 10 + Math.floor((85 * done) / batches.length);
        // At most one status write per 5 percent.
        if (progress - lastAnnounced >= 5 && done < batches.length) {
          lastAnnounced = progress;
          await setStatus(job.documentId, "embedding", progress);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(deps.concurrency, batches.length) }, worker));
    return out.flat();
  }

  async function run(job: IngestJob): Promise<void> {
    const log = deps.logger.child({ documentId: job.documentId });
    try {
      // Failed by the sweep or deleted while it waited: nothing to ingest, and nothing to bill.
      if (!(await deps.store.claim(job.documentId))) {
        log.info("document no longer queued: ingestion dropped");
        return;
      }
      announce(job.documentId);
      const texts = await deps.split(job.parsed.text, job.split, { signal: stop.signal });
      await setStatus(job.documentId, "embedding", 10);
      const vectors = await embedAll(job, texts);
      const now = new Date();
      const committed = await deps.store.commitChunks(
        job.documentId,
        texts.length,
        ["parsing", "embedding"],
        async (client, first) => {
          const chunks: ChunkRecord[] = texts.map((content, i) => ({
            documentId: job.documentId,
            id: first + i,
            collectionId: job.collectionId,
            content,
            metadata: job.metadata,
            embedding: vectors[i] as number[],
            createdAt: now,
          }));
          await insertChunks(client, chunks, job.language);
          // Elasticsearch indexes inside the transaction's lifetime: if it fails, nothing was committed.
          await deps.backend.index(
            chunks,
            new Map([[job.collectionId, { id: job.collectionId, language: job.language }]]),
          );
        },
      );
      if (committed) announce(job.documentId);
      log.debug({ chunks: texts.length, committed: Boolean(committed) }, "document ingested");
    } catch (err) {
      if (!(err instanceof IngestError)) log.warn({ err }, "document ingestion failed");
      const reason = stop.signal.aborted
        ? "Ingestion was interrupted by a server restart; upload again."
        : reasonOf(err);
      await setStatus(job.documentId, "failed", 0, reason).catch((e) =>
        log.error({ err: e }, "could not mark the document failed"),
      );
    }
  }

  function pump() {
    while (active.size < deps.maxActive && queue.length > 0 && !stop.signal.aborted) {
      const job = queue.shift() as IngestJob;
      running.add(job.documentId);
      const p: Promise<void> = run(job).finally(() => {
        running.delete(job.documentId);
        active.delete(p);
        pump();
      });
      active.add(p);
    }
  }

  return {
    changes,
    announce,
    /** Queues documents already stored as `queued`. */
    enqueue(jobs: IngestJob[]) {
      queue.push(...jobs);
      pump();
    },
    /** Queued and running ingestions. */
    depth: () => queue.length + active.size,
    /**
     * Stops taking work and waits up to `graceMs` for running ingestions; what is left is failed now, so that no
     * document stays `queued` forever (its file was never stored).
     */
    async close(graceMs = 5_000) {
      clearInterval(heartbeat);
      const left = queue.splice(0);
      for (const job of left)
        await setStatus(job.documentId, "failed", 0, "Ingestion was interrupted by a server restart; upload again.");
      const all = Promise.all(active);
      const timer = new Promise((r) => setTimeout(r, graceMs).unref());
      await Promise.race([all, timer]);
      stop.abort();
      await all;
    },
  };
}

export type Ingestion = ReturnType<typeof createIngestion>;
