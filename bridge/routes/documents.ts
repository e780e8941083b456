import type { CallOptions } from "@connectrpc/connect";
import multipart from "@fastify/multipart";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Document } from "../../gen/passerelle/collections/v1/resources_pb.js";
import { listJson } from "../mappers/accounts.js";
import {
  bodyFromForm,
  type ChunkingJson,
  chunkingToProto,
  chunkJson,
  chunkListJson,
  type DocumentStatusName,
  documentJson,
  inRestTerms,
  isSettled,
  multipartError,
  statusToProto,
} from "../mappers/collections.js";
import { InvalidRequest } from "../openai/invalid-request.js";
import { type Clients, callOptions } from "../rpc.js";
import {
  chunkListQuery,
  chunkListSchema,
  chunkParams,
  collectionParams,
  createChunksBody,
  createDocumentBody,
  createdDocumentsSchema,
  documentListQuery,
} from "../schemas/collections.js";
import { deletedSchema, errorResponses, listSchema } from "../schemas/common.js";

type CreateBody = ChunkingJson & {
  file?: unknown;
  collection?: string;
  collection_id?: string;
  name?: string;
  metadata?: Record<string, string | number | boolean>;
  wait?: boolean;
};
type ListQuery = {
  limit: number;
  after?: string;
  collection?: string;
  collection_id?: string;
  status?: DocumentStatusName;
};
type ChunksBody = { chunks: { content: string; metadata?: Record<string, string | number | boolean> }[] };
type Params = { id: string };
type ChunkParams = { id: string; chunk_id: number };

interface Upload {
  data: Buffer;
  fileName: string;
  mimeType: string;
}

const tags = ["documents"];
const security = [{ bearer: [] }];
const JSON_MIME = "application/json";
/**
 * Text fields of an upload form: the fields `createDocumentBody` knows, with `separators` repeated up to 32 times.
 * Each is at most 32 KiB, room for the largest `metadata` allowed (16 keys of 255 characters, even when a client's
 * JSON escapes every character as \uXXXX): what is buffered besides the file stays around 1.5 MiB at most.
 */
const FORM_LIMITS = { fields: 48, fieldSize: 32 * 1024 };
/** The RPC's field names → the REST API's (`content` is the uploaded file). */
const REST_NAMES: Readonly<Record<string, string>> = { content: "file" };

async function restCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw inRestTerms(err, REST_NAMES);
  }
}

/**
 * Documents (CollectionService): upload (multipart, or JSON for an empty document), list, read, delete, and their
 * chunks. Uploads are parsed at once (a file that cannot be read is a 400 and creates nothing), then split and
 * embedded in the background; `wait=true` answers once that is over.
 */
export async function documentRoutes(app: FastifyInstance, clients: Clients, opts: { maxFileBytes: number }) {
  const uploads = new WeakMap<FastifyRequest, Upload>();

  /** Follows a document until it is ready or failed (WatchDocument); the client leaving cancels the watch. */
  async function settled(doc: Document, call: CallOptions): Promise<Document> {
    if (isSettled(doc)) return doc;
    let last = doc;
    for await (const m of clients.collections.watchDocument({ id: doc.id }, call)) {
      if (m.document) last = m.document;
      if (isSettled(last)) break;
    }
    return last;
  }

  // Multipart only here: every other route keeps answering 415 to anything but JSON.
  await app.register(async (scope) => {
    await scope.register(multipart, {
      limits: { fileSize: opts.maxFileBytes, files: 1, parts: FORM_LIMITS.fields + 1, ...FORM_LIMITS },
    });

    scope.post<{ Body: CreateBody }>(
      "/v1/documents",
      {
        config: { verifyKeyFirst: true },
        schema: {
          tags,
          security,
          summary:
            "Uploads a file into a collection (multipart/form-data), or creates an empty document (JSON, no file) " +
            `to fill with chunks. Files up to ${opts.maxFileBytes} bytes (larger: 413). With wait=true, answers ` +
            "once ingestion is over (status ready or failed); else at once (status queued).",
          consumes: ["multipart/form-data", JSON_MIME],
          body: createDocumentBody,
          response: { 201: createdDocumentsSchema, 413: { $ref: "Error#" }, ...errorResponses },
        },
        preValidation: async (req) => {
          if (!req.isMultipart()) return;
          const fields = new Map<string, unknown[]>();
          try {
            for await (const part of req.parts()) {
              if (part.type === "file") {
                if (part.fieldname !== "file")
                  throw new InvalidRequest(
                    `Send the file as the 'file' field, not '${part.fieldname}'.`,
                    part.fieldname,
                  );
                const data = await part.toBuffer();
                uploads.set(req, { data, fileName: part.filename, mimeType: part.mimetype });
              } else {
                // Busboy cuts a field at `fieldSize` without an error: refuse it rather than use a truncated value.
                if (part.valueTruncated)
                  throw new InvalidRequest(
                    `'${part.fieldname}' is longer than ${FORM_LIMITS.fieldSize} bytes.`,
                    part.fieldname,
                  );
                const list = fields.get(part.fieldname) ?? [];
                list.push(part.value);
                fields.set(part.fieldname, list);
              }
            }
          } catch (err) {
            throw multipartError(err, opts.maxFileBytes);
          }
          req.body = bodyFromForm(fields) as CreateBody;
        },
      },
      async (req, reply) => {
        const b = req.body ?? {};
        const upload = uploads.get(req);
        if (b.file !== undefined) throw new InvalidRequest("Send a file as multipart/form-data.", "file");
        if (b.collection !== undefined && b.collection_id !== undefined && b.collection !== b.collection_id)
          throw new InvalidRequest("Give 'collection' or its alias 'collection_id', not both.", "collection_id");
        const collectionId = b.collection ?? b.collection_id;
        if (!collectionId) throw new InvalidRequest("'collection' is required.", "collection");
        const call = callOptions(req, reply);
        const res = await restCall(() =>
          clients.collections.createDocument(
            {
              collectionId,
              name: b.name ?? "",
              // A form's file input left empty sends a part without a name: no file.
              fileName: upload?.fileName ?? "",
              mimeType: upload?.mimeType ?? "",
              content: upload?.data ?? new Uint8Array(0),
              metadata: b.metadata,
              chunking: chunkingToProto(b),
            },
            call,
          ),
        );
        const docs = b.wait ? await Promise.all(res.documents.map((d) => settled(d, call))) : res.documents;
        reply.code(201);
        const data = docs.map(documentJson);
        // A JSON upload is a list of documents (one per item), whatever its length.
        if (data.length !== 1 || data[0]?.mime_type === JSON_MIME) return { object: "list" as const, data };
        return data[0];
      },
    );
  });

  app.get<{ Querystring: ListQuery }>(
    "/v1/documents",
    {
      schema: {
        tags,
        security,
        summary: "Lists the caller's own documents, or those of one collection (theirs or a public one), newest first.",
        querystring: documentListQuery,
        response: { 200: listSchema("Document"), ...errorResponses },
      },
    },
    async (req, reply) => {
      const q = req.query;
      if (q.collection !== undefined && q.collection_id !== undefined && q.collection !== q.collection_id)
        throw new InvalidRequest("Give 'collection' or its alias 'collection_id', not both.", "collection_id");
      const res = await clients.collections.listDocuments(
        {
          collectionId: q.collection ?? q.collection_id ?? "",
          pageSize: q.limit,
          pageToken: q.after ?? "",
          status: statusToProto(q.status),
        },
        callOptions(req, reply),
      );
      return listJson(res.documents.map(documentJson), res.nextPageToken);
    },
  );

  const oneDocument = { 200: { $ref: "Document#" }, ...errorResponses } as const;

  app.get<{ Params: Params }>(
    "/v1/documents/:id",
    {
      schema: {
        tags,
        security,
        summary: "Reads a document and its ingestion status.",
        params: collectionParams,
        response: oneDocument,
      },
    },
    async (req, reply) => {
      const res = await clients.collections.getDocument({ id: req.params.id }, callOptions(req, reply));
      if (!res.document) throw new Error("GetDocument answered without a document");
      return documentJson(res.document);
    },
  );

  app.delete<{ Params: Params }>(
    "/v1/documents/:id",
    {
      schema: {
        tags,
        security,
        summary: "Deletes a document and its chunks (owner only).",
        params: collectionParams,
        response: { 200: deletedSchema("document"), ...errorResponses },
      },
    },
    async (req, reply) => {
      await clients.collections.deleteDocument({ id: req.params.id }, callOptions(req, reply));
      return { id: req.params.id, object: "document.deleted" as const, deleted: true };
    },
  );

  app.post<{ Params: Params; Body: ChunksBody }>(
    "/v1/documents/:id/chunks",
    {
      schema: {
        tags,
        security,
        summary:
          "Appends 1–64 chunks to a ready document (owner only), numbered after its last; they are embedded and " +
          "searchable when this answers.",
        params: collectionParams,
        body: createChunksBody,
        response: {
          201: {
            type: "object",
            properties: {
              object: { type: "string", enum: ["list"] },
              data: { type: "array", items: { $ref: "Chunk#" } },
            },
            required: ["object", "data"],
          },
          ...errorResponses,
        },
      },
    },
    async (req, reply) => {
      const res = await clients.collections.createChunks(
        {
          documentId: req.params.id,
          chunks: req.body.chunks.map((c) => ({ content: c.content, metadata: c.metadata })),
        },
        callOptions(req, reply),
      );
      reply.code(201);
      return { object: "list" as const, data: res.chunks.map(chunkJson) };
    },
  );

  app.get<{ Params: Params; Querystring: { limit: number; after?: number } }>(
    "/v1/documents/:id/chunks",
    {
      schema: {
        tags,
        security,
        summary: "Lists a document's chunks in order (`after=<last_id>` for the next page).",
        params: collectionParams,
        querystring: chunkListQuery,
        response: { 200: chunkListSchema, ...errorResponses },
      },
    },
    async (req, reply) => {
      const res = await clients.collections.listChunks(
        {
          documentId: req.params.id,
          pageSize: req.query.limit ?? 20,
          pageToken: req.query.after === undefined ? "" : String(req.query.after),
        },
        callOptions(req, reply),
      );
      return chunkListJson(res.chunks, res.nextPageToken);
    },
  );

  app.get<{ Params: ChunkParams }>(
    "/v1/documents/:id/chunks/:chunk_id",
    {
      schema: {
        tags,
        security,
        summary: "Reads one chunk.",
        params: chunkParams,
        response: { 200: { $ref: "Chunk#" }, ...errorResponses },
      },
    },
    async (req, reply) => {
      const res = await clients.collections.getChunk(
        { documentId: req.params.id, chunkId: BigInt(req.params.chunk_id) },
        callOptions(req, reply),
      );
      if (!res.chunk) throw new Error("GetChunk answered without a chunk");
      return chunkJson(res.chunk);
    },
  );

  app.delete<{ Params: ChunkParams }>(
    "/v1/documents/:id/chunks/:chunk_id",
    {
      schema: {
        tags,
        security,
        summary: "Deletes one chunk (owner only).",
        params: chunkParams,
        response: {
          200: {
            type: "object",
            properties: {
              id: { type: "integer" },
              object: { type: "string", enum: ["chunk.deleted"] },
              deleted: { type: "boolean" },
            },
            required: ["id", "object", "deleted"],
          },
          ...errorResponses,
        },
      },
    },
    async (req, reply) => {
      const { id, chunk_id } = req.params;
      await clients.collections.deleteChunk({ documentId: id, chunkId: BigInt(chunk_id) }, callOptions(req, reply));
      return { id: chunk_id, object: "chunk.deleted" as const, deleted: true };
    },
  );
}
