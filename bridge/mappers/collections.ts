import { clone, create, fromJson, type JsonObject, type JsonValue, type MessageInitShape } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { ChunkingOptionsSchema } from "../../gen/passerelle/collections/v1/resources_pb.js";
import {
  type Chunk,
  type Collection,
  type Document,
  DocumentStatus,
  Visibility,
} from "../../gen/passerelle/collections/v1/resources_pb.js";
import { ErrorInfoSchema } from "../../gen/passerelle/errors/v1/error_info_pb.js";
import {
  ComparisonOperator,
  CompoundOperator,
  type MetadataFilterSchema,
  SearchMethod,
  type SearchRequestSchema,
  type SearchResponse,
  type SearchResult,
} from "../../gen/passerelle/search/v1/search_service_pb.js";
import { InvalidRequest } from "../openai/invalid-request.js";
import { impactJson } from "../openai/usage.js";
import { unix } from "./accounts.js";

/** Pure translations between the REST JSON of collections, documents, chunks and search and their protobufs. */

export const VISIBILITIES = ["private", "public"] as const;
export type VisibilityName = (typeof VISIBILITIES)[number];
const VISIBILITY: Record<VisibilityName, Visibility> = { private: Visibility.PRIVATE, public: Visibility.PUBLIC };

export const DOCUMENT_STATUSES = ["queued", "parsing", "embedding", "ready", "failed"] as const;
export type DocumentStatusName = (typeof DOCUMENT_STATUSES)[number];
const STATUS: Record<DocumentStatusName, DocumentStatus> = {
  queued: DocumentStatus.QUEUED,
  parsing: DocumentStatus.PARSING,
  embedding: DocumentStatus.EMBEDDING,
  ready: DocumentStatus.READY,
  failed: DocumentStatus.FAILED,
};

export const SEARCH_METHODS = ["semantic", "lexical", "hybrid"] as const;
export type SearchMethodName = (typeof SEARCH_METHODS)[number];
const METHOD: Record<SearchMethodName, SearchMethod> = {
  semantic: SearchMethod.SEMANTIC,
  lexical: SearchMethod.LEXICAL,
  hybrid: SearchMethod.HYBRID,
};

const COMPARISON: Record<string, ComparisonOperator> = {
  eq: ComparisonOperator.EQ,
  ne: ComparisonOperator.NE,
  gt: ComparisonOperator.GT,
  gte: ComparisonOperator.GTE,
  lt: ComparisonOperator.LT,
  lte: ComparisonOperator.LTE,
  in: ComparisonOperator.IN,
  nin: ComparisonOperator.NIN,
};
export const FILTER_TYPES = [...Object.keys(COMPARISON), "and", "or"];
/** Deeper filters are refused by the service too; checking here keeps recursion bounded on hostile input. */
const MAX_FILTER_DEPTH = 4;

const nameOf = <N extends string, V>(table: Record<N, V>, value: V): N | "unknown" =>
  (Object.entries(table) as [N, V][]).find(([, v]) => v === value)?.[0] ?? "unknown";

export function visibilityToProto(name: VisibilityName | undefined): Visibility {
  return name ? VISIBILITY[name] : Visibility.UNSPECIFIED;
}

export function statusToProto(name: DocumentStatusName | undefined): DocumentStatus {
  return name ? STATUS[name] : DocumentStatus.UNSPECIFIED;
}

export function isSettled(d: Document): boolean {
  return d.status === DocumentStatus.READY || d.status === DocumentStatus.FAILED;
}

export function collectionJson(c: Collection) {
  return {
    object: "collection" as const,
    id: c.id,
    name: c.name,
    description: c.description,
    visibility: nameOf(VISIBILITY, c.visibility),
    owner: c.ownerId,
    language: c.language,
    documents: Number(c.documentCount),
    chunks: Number(c.chunkCount),
    created: unix(c.createTime) ?? 0,
    updated: unix(c.updateTime) ?? 0,
  };
}

export function documentJson(d: Document) {
  return {
    object: "document" as const,
    id: d.id,
    collection_id: d.collectionId,
    name: d.name,
    file_name: d.fileName || null,
    mime_type: d.mimeType || null,
    bytes: Number(d.sizeBytes),
    metadata: d.metadata ?? {},
    status: nameOf(STATUS, d.status),
    progress: d.progress,
    error: d.failureReason || null,
    chunks: Number(d.chunkCount),
    created: unix(d.createTime) ?? 0,
    updated: unix(d.updateTime) ?? 0,
  };
}

export function chunkJson(c: Chunk) {
  return {
    object: "chunk" as const,
    id: Number(c.id),
    document_id: c.documentId,
    collection_id: c.collectionId,
    content: c.content,
    metadata: c.metadata ?? {},
    created: unix(c.createTime) ?? 0,
  };
}

/** The list envelope of chunks: their ids are integers (positions), and `after=<last_id>` pages on. */
export function chunkListJson(chunks: Chunk[], nextPageToken: string) {
  const data = chunks.map(chunkJson);
  return {
    object: "list" as const,
    data,
    first_id: data[0]?.id ?? null,
    last_id: data[data.length - 1]?.id ?? null,
    has_more: nextPageToken !== "",
  };
}

export function searchResultJson(r: SearchResult) {
  return {
    object: "search.result" as const,
    method: nameOf(METHOD, r.method),
    score: r.score,
    chunk: r.chunk ? chunkJson(r.chunk) : null,
    document_name: r.documentName,
  };
}

export function searchResponseJson(res: SearchResponse) {
  const u = res.usage;
  return {
    object: "list" as const,
    data: res.results.map(searchResultJson),
    usage: {
      prompt_tokens: Number(u?.promptTokens ?? 0n),
      total_tokens: Number(u?.totalTokens ?? 0n),
      ...(u ? impactJson({ cost: u.cost, carbon: u.carbon }) : {}),
    },
  };
}

/** The chunking fields of a document upload, as the reference system names them. */
export interface ChunkingJson {
  chunk_size?: number;
  chunk_overlap?: number;
  chunk_min_size?: number;
  separators?: string[];
  is_separator_regex?: boolean;
  preset_separators?: string;
  disable_chunking?: boolean;
}

export function chunkingToProto(b: ChunkingJson): MessageInitShape<typeof ChunkingOptionsSchema> {
  return {
    chunkSize: b.chunk_size ?? 0,
    chunkOverlap: b.chunk_overlap ?? 0,
    chunkMinSize: b.chunk_min_size ?? 0,
    separators: b.separators ?? [],
    isSeparatorRegex: b.is_separator_regex ?? false,
    preset: b.preset_separators ?? "",
    disableChunking: b.disable_chunking ?? false,
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** OpenAI's file-search filter grammar → the RPC's MetadataFilter; what cannot be read is a 400 naming the path. */
export function filterToProto(f: unknown, path: string, depth = 1): MessageInitShape<typeof MetadataFilterSchema> {
  if (!isObject(f)) throw new InvalidRequest(`'${path}' must be a filter object.`, path);
  if (depth > MAX_FILTER_DEPTH) throw new InvalidRequest(`'${path}' nests more than ${MAX_FILTER_DEPTH} levels.`, path);
  const type = f.type;
  if (type === "and" || type === "or") {
    const extra = Object.keys(f).find((k) => k !== "type" && k !== "filters");
    if (extra) throw new InvalidRequest(`'${path}' has an unknown field '${extra}' for '${type}'.`, `${path}.${extra}`);
    if (!Array.isArray(f.filters) || f.filters.length === 0)
      throw new InvalidRequest(`'${path}.filters' must be a non-empty list of filters.`, `${path}.filters`);
    const filters = f.filters.map((x, i) => filterToProto(x, `${path}.filters[${i}]`, depth + 1));
    const operator = type === "and" ? CompoundOperator.AND : CompoundOperator.OR;
    return { kind: { case: "compound", value: { operator, filters } } };
  }
  const operator = typeof type === "string" ? COMPARISON[type] : undefined;
  if (operator === undefined)
    throw new InvalidRequest(`'${path}.type' must be one of ${FILTER_TYPES.join(", ")}.`, `${path}.type`);
  const extra = Object.keys(f).find((k) => k !== "type" && k !== "key" && k !== "value");
  if (extra) throw new InvalidRequest(`'${path}' has an unknown field '${extra}' for '${type}'.`, `${path}.${extra}`);
  if (typeof f.key !== "string" || !f.key)
    throw new InvalidRequest(`'${path}.key' must be a non-empty string.`, `${path}.key`);
  if (f.value === undefined || f.value === null)
    throw new InvalidRequest(`'${path}.value' is required.`, `${path}.value`);
  const value = fromJson(ValueSchema, f.value as JsonValue);
  return { kind: { case: "comparison", value: { key: f.key, operator, value } } };
}

/** The REST body of `POST /v1/search`, with the reference system's aliases. */
export interface SearchJson {
  query?: string;
  prompt?: string;
  collection_ids?: string[];
  collections?: string[];
  document_ids?: string[];
  filters?: JsonObject;
  metadata_filters?: JsonObject;
  method?: SearchMethodName;
  limit?: number;
  offset?: number;
  score_threshold?: number;
  rrf_k?: number;
  rff_k?: number;
  semantic_weight?: number;
  lexical_weight?: number;
}

/** A field or its alias, not both. */
function either<T>(b: SearchJson, name: keyof SearchJson, alias: keyof SearchJson): T | undefined {
  if (b[name] !== undefined && b[alias] !== undefined)
    throw new InvalidRequest(`Give '${name}' or its alias '${alias}', not both.`, alias);
  return (b[name] ?? b[alias]) as T | undefined;
}

export function searchRequestToProto(b: SearchJson): MessageInitShape<typeof SearchRequestSchema> {
  const query = either<string>(b, "query", "prompt");
  if (query === undefined) throw new InvalidRequest("'query' is required.", "query");
  const filter = either<JsonObject>(b, "filters", "metadata_filters");
  return {
    query,
    collectionIds: either<string[]>(b, "collection_ids", "collections") ?? [],
    documentIds: b.document_ids ?? [],
    filter:
      filter === undefined
        ? undefined
        : filterToProto(filter, b.filters !== undefined ? "filters" : "metadata_filters"),
    method: b.method ? METHOD[b.method] : SearchMethod.UNSPECIFIED,
    limit: b.limit ?? 0,
    offset: b.offset ?? 0,
    scoreThreshold: b.score_threshold,
    rrfK: either<number>(b, "rrf_k", "rff_k") ?? 0,
    semanticWeight: b.semantic_weight,
    lexicalWeight: b.lexical_weight,
  };
}

/**
 * A ConnectError whose `param` (and quoted name in its message) is an RPC field, retold with the REST name:
 * `renames` maps an RPC name to the REST one, matched as the head of the param's path (`filter.filters[0].type`).
 */
export function inRestTerms(err: unknown, renames: Readonly<Record<string, string>>): unknown {
  if (!(err instanceof ConnectError)) return err;
  const info = err.findDetails(ErrorInfoSchema)[0];
  const head = info?.param.match(/^[a-z_]+/)?.[0];
  const name = head ? renames[head] : undefined;
  if (!info || !head || name === undefined) return err;
  const detail = clone(ErrorInfoSchema, info);
  detail.param = name + info.param.slice(head.length);
  const message = err.rawMessage.replace(new RegExp(`'${head}(?=[.'\\[])`, "g"), `'${name}`);
  return new ConnectError(message, err.code, err.metadata, [{ desc: ErrorInfoSchema, value: detail }], err.cause);
}

const INTEGER_FIELDS = new Set(["chunk_size", "chunk_overlap", "chunk_min_size"]);
const BOOLEAN_FIELDS = new Set(["is_separator_regex", "disable_chunking", "wait"]);
const TRUE = new Set(["true", "1", "on", "yes"]);
const FALSE = new Set(["false", "0", "off", "no"]);

/** The same refusal the core gives for a file over its limit, so both answer 413 `file_too_large` alike. */
export function fileTooLarge(limit: number): ConnectError {
  const info = create(ErrorInfoSchema, { reason: "FILE_TOO_LARGE", param: "file" });
  return new ConnectError(
    `The file is larger than the largest accepted, ${limit} bytes.`,
    Code.InvalidArgument,
    undefined,
    [{ desc: ErrorInfoSchema, value: info }],
  );
}

/** A text field that holds JSON (`metadata`, `separators`), as the reference system's clients send them. */
function parseJsonField(name: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new InvalidRequest(`'${name}' must be valid JSON (${name === "metadata" ? "an object" : "an array"}).`, name);
  }
}

/**
 * Multipart form fields (text by nature) → the typed body the JSON schema validates: integers and booleans read from
 * their text (what cannot be read stays text, and the schema refuses it), `metadata` and `separators` from JSON,
 * `separators` also as a repeated field. Empty fields are absent (an HTML form sends every input).
 */
export function bodyFromForm(fields: Map<string, unknown[]>): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const [rawName, values] of fields) {
    const name = rawName === "separators[]" ? "separators" : rawName;
    const present = values.filter((v) => v !== "");
    if (present.length === 0) continue;
    if (name === "separators") {
      const first = present[0];
      body.separators =
        present.length === 1 && typeof first === "string" && first.trimStart().startsWith("[")
          ? parseJsonField(name, first)
          : present;
      continue;
    }
    if (present.length > 1) throw new InvalidRequest(`'${name}' is given more than once.`, name);
    const v = present[0];
    if (typeof v !== "string") body[name] = v;
    else if (INTEGER_FIELDS.has(name) && /^-?\d{1,15}$/.test(v.trim())) body[name] = Number(v.trim());
    else if (BOOLEAN_FIELDS.has(name) && TRUE.has(v.trim().toLowerCase())) body[name] = true;
    else if (BOOLEAN_FIELDS.has(name) && FALSE.has(v.trim().toLowerCase())) body[name] = false;
    else if (name === "metadata") body[name] = parseJsonField(name, v);
    else body[name] = v;
  }
  return body;
}

/** A multipart error of @fastify/multipart, as OpenAI-shaped refusals. */
export function multipartError(err: unknown, maxFileBytes: number): unknown {
  const code = (err as { code?: unknown }).code;
  if (code === "FST_REQ_FILE_TOO_LARGE") return fileTooLarge(maxFileBytes);
  if (code === "FST_FILES_LIMIT") return new InvalidRequest("Send one file per request, as the 'file' field.", "file");
  if (code === "FST_PARTS_LIMIT" || code === "FST_FIELDS_LIMIT")
    return new InvalidRequest("The form has too many fields.", "body");
  if (err instanceof InvalidRequest || err instanceof ConnectError) return err;
  // Anything else the form reader throws is about the body sent (no boundary, cut short, a bad JSON part…).
  return new InvalidRequest(`The multipart/form-data body cannot be read: ${(err as Error).message}`, "body");
}
