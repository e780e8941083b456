import { DOCUMENT_STATUSES, FILTER_TYPES, SEARCH_METHODS, VISIBILITIES } from "../mappers/collections.js";
import { pagingQuery, unixTime } from "./common.js";

/**
 * JSON schemas of collections, documents, chunks and search (responses are serialized through them: list every
 * field). Naming follows the rest of this API: Unix-second `created`/`updated`, as the reference system's
 * collections and documents also name them; counts are `documents` and `chunks`, as the reference's.
 */

const id = { type: "string", maxLength: 64 } as const;
/** Metadata values: what every search backend filters on the same way. */
const metadataValue = { type: ["string", "number", "boolean"] } as const;
const metadataOut = {
  type: "object",
  additionalProperties: true,
  description: "User metadata: at most 16 keys, each a string (≤ 255 characters), a number or a boolean.",
} as const;

export const collectionSchema = {
  $id: "Collection",
  type: "object",
  description: "A named set of documents searched together. Private ones are seen by their owner only.",
  properties: {
    object: { type: "string", enum: ["collection"] },
    id: { type: "string" },
    name: { type: "string" },
    description: { type: "string" },
    visibility: { type: "string", enum: VISIBILITIES },
    owner: { type: "string", description: "The owner's user id." },
    language: { type: "string", description: "Full-text language of its chunks (lexical search stemming)." },
    documents: { type: "integer", description: "Documents in it, whatever their status." },
    chunks: { type: "integer", description: "Searchable chunks in it (those of ready documents)." },
    created: { ...unixTime, description: "Creation time (Unix seconds)." },
    updated: { ...unixTime, description: "Last change (Unix seconds)." },
  },
  required: [
    "object",
    "id",
    "name",
    "description",
    "visibility",
    "owner",
    "language",
    "documents",
    "chunks",
    "created",
    "updated",
  ],
} as const;

export const documentSchema = {
  $id: "Document",
  type: "object",
  description: "A document of a collection and where its ingestion stands.",
  properties: {
    object: { type: "string", enum: ["document"] },
    id: { type: "string" },
    collection_id: { type: "string" },
    name: { type: "string" },
    file_name: { type: ["string", "null"], description: "The uploaded file's name; null without a file." },
    mime_type: { type: ["string", "null"], description: "Detected type of the uploaded file; null without a file." },
    bytes: { type: "integer", description: "Size of the uploaded file." },
    metadata: metadataOut,
    status: {
      type: "string",
      enum: DOCUMENT_STATUSES,
      description: "queued → parsing → embedding → ready; failed when ingestion stopped (see `error`).",
    },
    progress: { type: "integer", minimum: 0, maximum: 100, description: "Percent of the ingestion done." },
    error: { type: ["string", "null"], description: "Why ingestion failed; null unless `status` is failed." },
    chunks: { type: "integer", description: "Chunks of the document." },
    created: { ...unixTime, description: "Creation time (Unix seconds)." },
    updated: { ...unixTime, description: "Last change (Unix seconds)." },
  },
  required: [
    "object",
    "id",
    "collection_id",
    "name",
    "file_name",
    "mime_type",
    "bytes",
    "metadata",
    "status",
    "progress",
    "error",
    "chunks",
    "created",
    "updated",
  ],
} as const;

export const chunkSchema = {
  $id: "Chunk",
  type: "object",
  description: "A piece of a document, the unit of search.",
  properties: {
    object: { type: "string", enum: ["chunk"] },
    id: { type: "integer", description: "Position in its document, from 1." },
    document_id: { type: "string" },
    collection_id: { type: "string" },
    content: { type: "string" },
    metadata: { ...metadataOut, description: "The document's metadata merged with the chunk's own." },
    created: { ...unixTime, description: "Creation time (Unix seconds)." },
  },
  required: ["object", "id", "document_id", "collection_id", "content", "metadata", "created"],
} as const;

const range = {
  type: "object",
  properties: { min: { type: "number" }, max: { type: "number" } },
  required: ["min", "max"],
} as const;

export const searchResultSchema = {
  $id: "SearchResult",
  type: "object",
  properties: {
    object: { type: "string", enum: ["search.result"] },
    method: { type: "string", enum: SEARCH_METHODS, description: "The method that found it." },
    score: {
      type: "number",
      description: "Cosine similarity (semantic), full-text rank (lexical) or fused score (hybrid); higher is closer.",
    },
    chunk: { $ref: "Chunk#" },
    document_name: { type: "string" },
  },
  required: ["object", "method", "score", "chunk", "document_name"],
} as const;

export const collectionSchemas = [collectionSchema, documentSchema, chunkSchema, searchResultSchema];

export const collectionParams = {
  type: "object",
  properties: { id },
  required: ["id"],
} as const;

export const chunkParams = {
  type: "object",
  properties: {
    id,
    chunk_id: { type: "integer", minimum: 1, maximum: 2147483647, description: "The chunk's position, from 1." },
  },
  required: ["id", "chunk_id"],
} as const;

export const createCollectionBody = {
  type: "object",
  additionalProperties: false,
  required: ["name"],
  properties: {
    name: { type: "string", minLength: 1, maxLength: 255 },
    description: { type: "string", maxLength: 4000 },
    visibility: {
      type: "string",
      enum: VISIBILITIES,
      description: "Default private; public needs the `create_public_collection` permission.",
    },
    language: {
      type: "string",
      maxLength: 40,
      description:
        "Full-text language: french (default), english, german, italian, spanish, portuguese, dutch or simple.",
    },
  },
} as const;

export const updateCollectionBody = {
  type: "object",
  additionalProperties: false,
  description: "Only the fields given change.",
  properties: {
    name: { type: "string", minLength: 1, maxLength: 255 },
    description: { type: "string", maxLength: 4000 },
    visibility: {
      type: "string",
      enum: VISIBILITIES,
      description: "Making a collection public needs the `create_public_collection` permission.",
    },
  },
} as const;

export const collectionListQuery = {
  type: "object",
  properties: {
    ...pagingQuery,
    name: { type: "string", maxLength: 255, description: "Only names containing this text (case-insensitive)." },
    visibility: { type: "string", enum: VISIBILITIES },
  },
} as const;

export const documentListQuery = {
  type: "object",
  properties: {
    ...pagingQuery,
    collection: { ...id, description: "Only the documents of this collection." },
    collection_id: { ...id, description: "Alias of `collection`." },
    status: { type: "string", enum: DOCUMENT_STATUSES },
  },
} as const;

export const chunkListQuery = {
  type: "object",
  properties: {
    limit: pagingQuery.limit,
    after: { type: "integer", minimum: 1, description: "Cursor: the `last_id` of the previous page." },
  },
} as const;

const chunkSize = (description: string) => ({ type: "integer", minimum: 0, maximum: 65536, description }) as const;

/**
 * `POST /v1/documents`, as multipart/form-data (form fields are text: numbers and booleans are read from it,
 * `metadata` is a JSON object as a string, `separators` repeated or a JSON array as a string) or as JSON without a
 * file (an empty document, filled by `POST /v1/documents/{id}/chunks`).
 */
export const createDocumentBody = {
  type: "object",
  additionalProperties: false,
  properties: {
    file: {
      type: "string",
      description:
        "The file, as a multipart/form-data file part (binary): PDF, DOCX, HTML, Markdown, plain text, or JSON " +
        "`[{text, title?, metadata?}]` (one document per item). Without it, an empty document is created.",
    },
    collection: { ...id, description: "The collection (one the caller owns); `collection_id` is an alias." },
    collection_id: { ...id, description: "Alias of `collection` (the reference system's name)." },
    name: {
      type: "string",
      maxLength: 255,
      description: "Display name; default the file name. Required without a file.",
    },
    metadata: {
      type: "object",
      maxProperties: 16,
      additionalProperties: metadataValue,
      description: "Copied onto every chunk: at most 16 keys, each a string (≤ 255 characters), a number or a boolean.",
    },
    chunk_size: chunkSize("Largest chunk, in characters (default 2048)."),
    chunk_overlap: chunkSize("Characters shared by consecutive chunks (default 0; below chunk_size)."),
    chunk_min_size: chunkSize("Chunks shorter than this are dropped (default 0)."),
    separators: {
      type: "array",
      maxItems: 32,
      items: { type: "string", maxLength: 200 },
      description: "Separators tried in order (default: the preset's).",
    },
    is_separator_regex: { type: "boolean", description: "Whether `separators` are regular expressions." },
    preset_separators: {
      type: "string",
      enum: ["markdown", "html", "text"],
      description: "Separator preset when no `separators` are given (default markdown).",
    },
    disable_chunking: { type: "boolean", description: "One chunk per document, however long." },
    wait: {
      type: "boolean",
      description: "Answer once ingestion is over (ready or failed) instead of at once (queued).",
    },
  },
} as const;

export const createChunksBody = {
  type: "object",
  additionalProperties: false,
  required: ["chunks"],
  properties: {
    chunks: {
      type: "array",
      minItems: 1,
      maxItems: 64,
      items: {
        type: "object",
        additionalProperties: false,
        required: ["content"],
        properties: {
          content: { type: "string", minLength: 1, maxLength: 65536 },
          metadata: {
            type: "object",
            maxProperties: 16,
            additionalProperties: metadataValue,
            description: "Merged over the document's metadata (16 keys at most in all).",
          },
        },
      },
    },
  },
} as const;

const filterSchema = {
  type: "object",
  required: ["type"],
  description:
    "OpenAI's file-search filter: `{type: eq|ne|gt|gte|lt|lte|in|nin, key, value}` or `{type: and|or, filters: " +
    "[…]}` (4 levels at most, 16 filters per level).",
  properties: {
    type: { type: "string", enum: FILTER_TYPES },
    key: { type: "string", minLength: 1, maxLength: 64 },
    value: {},
    filters: { type: "array", minItems: 1, maxItems: 16, items: { type: "object" } },
  },
} as const;

const idList = (description: string) =>
  ({ type: "array", maxItems: 100, items: { type: "string", maxLength: 64 }, description }) as const;

export const searchBody = {
  type: "object",
  additionalProperties: false,
  properties: {
    query: { type: "string", minLength: 1, maxLength: 8192, description: "The text to search for." },
    prompt: { type: "string", minLength: 1, maxLength: 8192, description: "Alias of `query` (the reference's)." },
    collection_ids: idList("Collections to search; default every collection the caller may read."),
    collections: idList("Alias of `collection_ids`."),
    document_ids: idList("Only chunks of these documents."),
    filters: filterSchema,
    metadata_filters: { ...filterSchema, description: "Alias of `filters`." },
    method: { type: "string", enum: SEARCH_METHODS, description: "Default semantic." },
    limit: { type: "integer", minimum: 1, maximum: 100, description: "Most results (default 10)." },
    offset: {
      type: "integer",
      minimum: 0,
      maximum: 10000,
      description: "Results skipped first (hybrid: offset + limit at most 100, the depth of the fused ranking).",
    },
    score_threshold: {
      type: "number",
      minimum: 0,
      maximum: 1,
      description: "Semantic only: results below this cosine similarity are dropped.",
    },
    rrf_k: {
      type: "integer",
      minimum: 1,
      maximum: 16384,
      description: "Hybrid only: reciprocal rank fusion constant (default 60).",
    },
    rff_k: { type: "integer", minimum: 1, maximum: 16384, description: "Alias of `rrf_k` (the reference's spelling)." },
    semantic_weight: { type: "number", minimum: 0, maximum: 100, description: "Hybrid only (default 1)." },
    lexical_weight: { type: "number", minimum: 0, maximum: 100, description: "Hybrid only (default 1)." },
  },
} as const;

export const searchResponseSchema = {
  type: "object",
  properties: {
    object: { type: "string", enum: ["list"] },
    data: { type: "array", items: { $ref: "SearchResult#" } },
    usage: {
      type: "object",
      description: "The query's embedding (zero for lexical search), with the gateway's cost and carbon estimate.",
      properties: {
        prompt_tokens: { type: "integer" },
        total_tokens: { type: "integer" },
        cost: { type: "number" },
        carbon: {
          type: "object",
          properties: { kWh: range, kgCO2eq: range },
          required: ["kWh", "kgCO2eq"],
        },
      },
      required: ["prompt_tokens", "total_tokens"],
    },
  },
  required: ["object", "data", "usage"],
} as const;

export const chunkListSchema = {
  type: "object",
  properties: {
    object: { type: "string", enum: ["list"] },
    data: { type: "array", items: { $ref: "Chunk#" } },
    first_id: { type: ["integer", "null"] },
    last_id: { type: ["integer", "null"] },
    has_more: { type: "boolean" },
  },
  required: ["object", "data", "first_id", "last_id", "has_more"],
} as const;

/** `POST /v1/documents`: one document, or a list for a JSON upload (one document per item). */
export const createdDocumentsSchema = {
  description:
    'The document; for a JSON upload (`[{text, title?, metadata?}]`), `{object: "list", data: [document…]}`.',
  anyOf: [
    { $ref: "Document#" },
    {
      type: "object",
      properties: { object: { type: "string", enum: ["list"] }, data: { type: "array", items: { $ref: "Document#" } } },
      required: ["object", "data"],
    },
  ],
} as const;
