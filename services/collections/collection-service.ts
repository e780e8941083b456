// Over 400 lines on purpose: the CollectionService's handlers (collections, documents, chunks) share one set of
// ownership checks and option readers; split by resource, each part would import the same dozen helpers.
import { create } from "@bufbuild/protobuf";
import { Code, type ServiceImpl } from "@connectrpc/connect";
import {
  type CollectionService,
  CreateChunksResponseSchema,
  CreateCollectionResponseSchema,
  CreateDocumentResponseSchema,
  DeleteChunkResponseSchema,
  DeleteCollectionResponseSchema,
  DeleteDocumentResponseSchema,
  GetChunkResponseSchema,
  GetCollectionResponseSchema,
  GetDocumentResponseSchema,
  ListChunksResponseSchema,
  ListCollectionsResponseSchema,
  ListDocumentsResponseSchema,
  UpdateCollectionResponseSchema,
  WatchDocumentResponseSchema,
} from "../../gen/passerelle/collections/v1/collection_service_pb.js";
import { Visibility } from "../../gen/passerelle/collections/v1/resources_pb.js";
import { type Principal, principalOf } from "../platform/context.js";
import { failedPrecondition, invalidArgument, notFound, permissionDenied, rpcError } from "../platform/errors.js";
import { decodePageToken, pageSize, paginate } from "../platform/paging.js";
import type { ChunkRecord, SearchBackend } from "../search/backend.js";
import { insertChunks } from "../search/postgres/index.js";
import { requireEmbeddingsModel } from "../search/search-service.js";
import { type CollectionRow, type CollectionStore, type DocumentRow, purgeOf } from "./collection-store.js";
import type { ParserPool } from "./ingest/index.js";
import type { Ingestion } from "./ingestion.js";
import { statusName, toChunk, toCollection, toDocument, visibilityName } from "./mappers.js";
import {
  descriptionOf,
  ingestErrorToConnect,
  languageOf,
  mergeMetadata,
  metadataOf,
  nameOf,
  requireId,
  splitOptionsOf,
} from "./validation.js";

/** Embeds texts with the platform's embeddings model, billed to `principal` under `endpoint`. */
export type EmbedAs = (
  principal: Principal,
  endpoint: "documents" | "search",
  texts: string[],
  signal: AbortSignal,
) => Promise<number[][]>;

export interface CollectionDeps {
  store: CollectionStore;
  backend: SearchBackend;
  ingestion: Ingestion;
  parser: ParserPool;
  embed: EmbedAs;
  /** The embeddings model every chunk is embedded with; undefined = the feature is not configured. */
  embeddingsModel: string | undefined;
  maxFileBytes: number;
  /** How often a watcher re-reads a document ingested by another process. */
  watchPollMs?: number;
}

const MAX_CHUNKS_PER_CALL = 64;
const MAX_CHUNK_CHARS = 65_536;

/** CollectionService: collections, documents and chunks, private to their owner unless public (read-only). */
export function createCollectionService(deps: CollectionDeps): ServiceImpl<typeof CollectionService> {
  const pollMs = deps.watchPollMs ?? 1_000;

  function requireConfigured(): string {
    if (!deps.embeddingsModel)
      throw failedPrecondition(
        "Collections are not enabled: the operator has not set PASSERELLE_RAG_EMBEDDINGS_MODEL.",
        "RAG_NOT_CONFIGURED",
      );
    return deps.embeddingsModel;
  }

  /** A collection the caller owns; NotFound otherwise, whether it is someone else's (even public) or absent. */
  async function ownedCollection(p: Principal, id: string): Promise<CollectionRow> {
    const c = await deps.store.readableCollection(p.userId, requireId(id, "collection_id", "collection"));
    if (!c || c.ownerId !== p.userId) throw notFound("collection", id);
    return c;
  }

  async function readableDocument(p: Principal, id: string, param = "id"): Promise<DocumentRow> {
    const d = await deps.store.readableDocument(p.userId, requireId(id, param, "document"));
    if (!d) throw notFound("document", id);
    return d;
  }

  async function ownedDocument(p: Principal, id: string, param = "id"): Promise<DocumentRow> {
    const d = await readableDocument(p, id, param);
    if (d.ownerId !== p.userId) throw notFound("document", id);
    return d;
  }

  function checkPublic(p: Principal, v: Visibility) {
    if (v === Visibility.PUBLIC && !p.permissions.has("create_public_collection") && !p.permissions.has("admin"))
      throw permissionDenied("Making a collection public needs the 'create_public_collection' permission.");
  }

  function chunkIdOf(value: bigint): number {
    if (value < 1n || value > 2_147_483_647n)
      throw invalidArgument("'chunk_id' must be a positive integer.", "chunk_id");
    return Number(value);
  }

  return {
    async createCollection(req, ctx) {
      const p = principalOf(ctx);
      const model = requireConfigured();
      const visibility = req.visibility === Visibility.UNSPECIFIED ? Visibility.PRIVATE : req.visibility;
      const vis = visibilityName(visibility);
      if (!vis) throw invalidArgument("'visibility' must be private or public.", "visibility");
      checkPublic(p, visibility);
      const row = await deps.store.createCollection({
        ownerId: p.userId,
        name: nameOf(req.name, "name", true) as string,
        description: descriptionOf(req.description),
        visibility: vis,
        language: languageOf(req.language),
        embeddingsModel: model,
      });
      return create(CreateCollectionResponseSchema, { collection: toCollection(row) });
    },

    async getCollection(req, ctx) {
      const p = principalOf(ctx);
      const c = await deps.store.readableCollection(p.userId, requireId(req.id, "id", "collection"));
      if (!c) throw notFound("collection", req.id);
      return create(GetCollectionResponseSchema, { collection: toCollection(c) });
    },

    async listCollections(req, ctx) {
      const p = principalOf(ctx);
      const size = pageSize(req.pageSize);
      const rows = await deps.store.listCollections(
        p.userId,
        { name: req.name || undefined, visibility: visibilityName(req.visibility) },
        { after: decodePageToken(req.pageToken), limit: size + 1 },
      );
      const page = paginate(rows, size);
      return create(ListCollectionsResponseSchema, {
        collections: page.items.map(toCollection),
        nextPageToken: page.nextPageToken,
      });
    },

    async updateCollection(req, ctx) {
      const p = principalOf(ctx);
      await ownedCollection(p, req.id);
      const paths = req.updateMask?.paths ?? [];
      for (const path of paths)
        if (!["name", "description", "visibility"].includes(path))
          throw invalidArgument(`'update_mask' names an unknown field '${path}'.`, "update_mask");
      const wants = (f: string, set: boolean) => (paths.length ? paths.includes(f) : set);
      const changes: { name?: string; description?: string; visibility?: "private" | "public" } = {};
      if (wants("name", req.name !== "")) changes.name = nameOf(req.name, "name", true);
      if (wants("description", req.description !== "")) changes.description = descriptionOf(req.description);
      if (wants("visibility", req.visibility !== Visibility.UNSPECIFIED)) {
        const vis = visibilityName(req.visibility);
        if (!vis) throw invalidArgument("'visibility' must be private or public.", "visibility");
        checkPublic(p, req.visibility);
        changes.visibility = vis;
      }
      const row = await deps.store.updateCollection(p.userId, req.id, changes);
      if (!row) throw notFound("collection", req.id);
      return create(UpdateCollectionResponseSchema, { collection: toCollection(row) });
    },

    async deleteCollection(req, ctx) {
      const p = principalOf(ctx);
      await ownedCollection(p, req.id);
      const purge = purgeOf(deps.backend, { collectionId: req.id });
      if (!(await deps.store.deleteCollection(p.userId, req.id, purge))) throw notFound("collection", req.id);
      return create(DeleteCollectionResponseSchema, {});
    },

    async createDocument(req, ctx) {
      const p = principalOf(ctx);
      const model = requireConfigured();
      const collection = await ownedCollection(p, req.collectionId);
      requireEmbeddingsModel(collection, model);
      const metadata = metadataOf(req.metadata);
      const split = splitOptionsOf(req.chunking);
      if (req.content.length > deps.maxFileBytes)
        throw rpcError(
          Code.InvalidArgument,
          `The file is ${req.content.length} bytes; the largest accepted is ${deps.maxFileBytes} bytes.`,
          "FILE_TOO_LARGE",
          { param: "file" },
        );
      const fileName = req.fileName.slice(0, 255);
      if (req.content.length === 0) {
        if (fileName) throw invalidArgument("The file is empty.", "file", "EMPTY_DOCUMENT");
        // No file: an empty, ready document that CreateChunks fills.
        const name = nameOf(req.name, "name", true) as string;
        const docs = await deps.store.createDocuments(p.userId, collection.id, [
          { name, fileName: "", mimeType: "", sizeBytes: 0, metadata, status: "ready", chunking: undefined },
        ]);
        if (!docs) throw notFound("collection", req.collectionId);
        return create(CreateDocumentResponseSchema, { documents: docs.map(toDocument) });
      }
      const parsed = await deps.parser
        .parse({ bytes: req.content, fileName: fileName || undefined, declaredMime: req.mimeType || undefined })
        .catch(ingestErrorToConnect);
      const baseName = nameOf(req.name, "name", false) ?? (fileName || "document");
      const items = parsed.documents.map((d, i) => ({
        parsed: d,
        metadata: mergeMetadata(metadata, d.metadata, `content[${i}].metadata`),
        // One document per JSON item: each is named by its title, else numbered after the file.
        name: parsed.documents.length > 1 ? (d.title || `${baseName} #${i + 1}`).slice(0, 255) : baseName,
      }));
      const docs = await deps.store.createDocuments(
        p.userId,
        collection.id,
        items.map((it) => ({
          name: it.name,
          fileName,
          mimeType: parsed.mime,
          sizeBytes: req.content.length,
          metadata: it.metadata,
          status: "queued",
          chunking: split,
        })),
      );
      if (!docs) throw notFound("collection", req.collectionId);
      deps.ingestion.enqueue(
        docs.map((doc, i) => ({
          documentId: doc.id,
          collectionId: collection.id,
          language: collection.language,
          parsed: items[i]?.parsed as (typeof items)[number]["parsed"],
          metadata: doc.metadata,
          split,
          embed: (texts, signal) => deps.embed(p, "documents", texts, signal),
        })),
      );
      return create(CreateDocumentResponseSchema, { documents: docs.map(toDocument) });
    },

    async getDocument(req, ctx) {
      const d = await readableDocument(principalOf(ctx), req.id);
      return create(GetDocumentResponseSchema, { document: toDocument(d) });
    },

    async listDocuments(req, ctx) {
      const p = principalOf(ctx);
      const size = pageSize(req.pageSize);
      if (req.collectionId) {
        const c = await deps.store.readableCollection(
          p.userId,
          requireId(req.collectionId, "collection_id", "collection"),
        );
        if (!c) throw notFound("collection", req.collectionId);
      }
      const rows = await deps.store.listDocuments(
        p.userId,
        { collectionId: req.collectionId || undefined, status: statusName(req.status) },
        { after: decodePageToken(req.pageToken), limit: size + 1 },
      );
      const page = paginate(rows, size);
      return create(ListDocumentsResponseSchema, {
        documents: page.items.map(toDocument),
        nextPageToken: page.nextPageToken,
      });
    },

    async deleteDocument(req, ctx) {
      const p = principalOf(ctx);
      await ownedDocument(p, req.id);
      const purge = purgeOf(deps.backend, { documentId: req.id });
      if (!(await deps.store.deleteDocument(p.userId, req.id, purge))) throw notFound("document", req.id);
      deps.ingestion.announce(req.id);
      return create(DeleteDocumentResponseSchema, {});
    },

    async *watchDocument(req, ctx) {
      const p = principalOf(ctx);
      let doc = await readableDocument(p, req.id);
      let last = "";
      while (!ctx.signal.aborted) {
        const key = `${doc.status}:${doc.progress}:${doc.chunkCount}`;
        if (key !== last) {
          last = key;
          yield create(WatchDocumentResponseSchema, { document: toDocument(doc) });
        }
        if (doc.status === "ready" || doc.status === "failed") return;
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            deps.ingestion.changes.off(req.id, done);
            ctx.signal.removeEventListener("abort", done);
            resolve();
          };
          const timer = setTimeout(done, pollMs);
          deps.ingestion.changes.on(req.id, done);
          ctx.signal.addEventListener("abort", done);
        });
        const next = await deps.store.readableDocument(p.userId, req.id);
        if (!next) throw notFound("document", req.id);
        doc = next;
      }
    },

    async createChunks(req, ctx) {
      const p = principalOf(ctx);
      const model = requireConfigured();
      const doc = await ownedDocument(p, req.documentId, "document_id");
      if (req.chunks.length === 0 || req.chunks.length > MAX_CHUNKS_PER_CALL)
        throw invalidArgument(`Give between 1 and ${MAX_CHUNKS_PER_CALL} chunks.`, "chunks");
      if (doc.status !== "ready")
        throw failedPrecondition(
          `The document is ${doc.status}: chunks can be added only to a ready document.`,
          "DOCUMENT_NOT_READY",
        );
      const inputs = req.chunks.map((c, i) => {
        const content = c.content.trim();
        if (!content || c.content.length > MAX_CHUNK_CHARS)
          throw invalidArgument(
            `'chunks[${i}].content' must hold 1 to ${MAX_CHUNK_CHARS} characters.`,
            `chunks[${i}].content`,
          );
        return {
          content: c.content,
          metadata: mergeMetadata(
            doc.metadata,
            metadataOf(c.metadata, `chunks[${i}].metadata`),
            `chunks[${i}].metadata`,
          ),
        };
      });
      const collection = await ownedCollection(p, doc.collectionId);
      requireEmbeddingsModel(collection, model);
      const vectors = await deps.embed(
        p,
        "documents",
        inputs.map((c) => c.content),
        ctx.signal,
      );
      const now = new Date();
      let written: ChunkRecord[] = [];
      const ok = await deps.store.commitChunks(doc.id, inputs.length, ["ready"], async (client, first) => {
        written = inputs.map((c, i) => ({
          documentId: doc.id,
          id: first + i,
          collectionId: doc.collectionId,
          content: c.content,
          metadata: c.metadata,
          embedding: vectors[i] as number[],
          createdAt: now,
        }));
        await insertChunks(client, written, collection.language);
        await deps.backend.index(
          written,
          new Map([[collection.id, { id: collection.id, language: collection.language }]]),
        );
      });
      if (!ok) throw notFound("document", req.documentId);
      deps.ingestion.announce(doc.id);
      return create(CreateChunksResponseSchema, {
        chunks: written.map((c) => toChunk(c)),
      });
    },

    async listChunks(req, ctx) {
      const p = principalOf(ctx);
      await readableDocument(p, req.documentId, "document_id");
      const size = pageSize(req.pageSize);
      let after: number | undefined;
      if (req.pageToken) {
        after = Number(req.pageToken);
        if (!/^[1-9][0-9]{0,9}$/.test(req.pageToken))
          throw invalidArgument("page_token is not a token this server issued.", "page_token");
      }
      const rows = await deps.store.listChunks(req.documentId, { after, limit: size + 1 });
      const items = rows.slice(0, size);
      return create(ListChunksResponseSchema, {
        chunks: items.map(toChunk),
        nextPageToken: rows.length > size ? String(items[items.length - 1]?.id) : "",
      });
    },

    async getChunk(req, ctx) {
      const p = principalOf(ctx);
      await readableDocument(p, req.documentId, "document_id");
      const chunk = await deps.store.getChunk(req.documentId, chunkIdOf(req.chunkId));
      if (!chunk) throw notFound("chunk", String(req.chunkId));
      return create(GetChunkResponseSchema, { chunk: toChunk(chunk) });
    },

    async deleteChunk(req, ctx) {
      const p = principalOf(ctx);
      await ownedDocument(p, req.documentId, "document_id");
      const id = chunkIdOf(req.chunkId);
      const purge = purgeOf(deps.backend, { documentId: req.documentId, chunkId: id });
      if (!(await deps.store.deleteChunk(req.documentId, id, purge))) throw notFound("chunk", String(req.chunkId));
      return create(DeleteChunkResponseSchema, {});
    },
  };
}
