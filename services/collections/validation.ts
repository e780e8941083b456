import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import type { ChunkingOptions } from "../../gen/passerelle/collections/v1/resources_pb.js";
import { TEXT_SEARCH_LANGUAGES } from "../platform/db/text-search.js";
import { invalidArgument } from "../platform/errors.js";
import { isUuid } from "../platform/paging.js";
import type { Metadata } from "../search/backend.js";
import { IngestError, type SplitOptions, validateSplitOptions } from "./ingest/index.js";

/** Keys a document (and each of its chunks, merged) may carry at most. */
export const MAX_METADATA_KEYS = 16;
const MAX_METADATA_STRING = 255;
const KEY = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * User metadata: at most 16 keys (letters, digits, `_ . : -`), each a string of at most 255 characters, a finite
 * number or a boolean — what every backend can filter on the same way. Nested objects, lists and null are refused
 * rather than flattened or dropped.
 */
export function metadataOf(value: JsonObject | undefined, param = "metadata"): Metadata {
  if (!value) return {};
  const keys = Object.keys(value);
  if (keys.length > MAX_METADATA_KEYS)
    throw invalidArgument(`'${param}' has ${keys.length} keys; at most ${MAX_METADATA_KEYS} are allowed.`, param);
  const out: Metadata = {};
  for (const key of keys) {
    if (!KEY.test(key))
      throw invalidArgument(
        `'${param}' key '${key.slice(0, 80)}' is invalid: use 1–64 letters, digits, '_', '.', ':' or '-'.`,
        param,
      );
    const v = value[key] as JsonValue;
    if (typeof v === "string") {
      if (v.length > MAX_METADATA_STRING)
        throw invalidArgument(`'${param}.${key}' is longer than ${MAX_METADATA_STRING} characters.`, `${param}.${key}`);
      out[key] = v;
    } else if (typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v))) out[key] = v;
    else throw invalidArgument(`'${param}.${key}' must be a string, a number or a boolean.`, `${param}.${key}`);
  }
  return out;
}

/** Merges chunk metadata over a document's, enforcing the key limit on the result. */
export function mergeMetadata(base: Metadata, own: Metadata, param: string): Metadata {
  const merged = { ...base, ...own };
  if (Object.keys(merged).length > MAX_METADATA_KEYS)
    throw invalidArgument(`'${param}' with the document's metadata has more than ${MAX_METADATA_KEYS} keys.`, param);
  return merged;
}

export function requireId(value: string, param: string, kind: string): string {
  if (!value) throw invalidArgument(`'${param}' is required.`, param);
  // Not an id we could have issued: the same answer as an id that does not exist, without a query.
  if (!isUuid(value)) throw invalidArgument(`'${param}' is not a valid ${kind} id.`, param);
  return value;
}

export function nameOf(value: string, param: string, required: boolean): string | undefined {
  const name = value.trim();
  if (!name) {
    if (required) throw invalidArgument(`'${param}' is required.`, param);
    return undefined;
  }
  if (name.length > 255) throw invalidArgument(`'${param}' is longer than 255 characters.`, param);
  return name;
}

export function descriptionOf(value: string): string {
  if (value.length > 4000) throw invalidArgument("'description' is longer than 4,000 characters.", "description");
  return value;
}

export function languageOf(value: string): string {
  const lang = (value || "french").toLowerCase();
  if (!(TEXT_SEARCH_LANGUAGES as readonly string[]).includes(lang))
    throw invalidArgument(
      `'language' must be one of ${TEXT_SEARCH_LANGUAGES.join(", ")}; got '${value.slice(0, 40)}'.`,
      "language",
    );
  return lang;
}

/** LangChain's options from the RPC's; invalid ones are the caller's error. */
export function splitOptionsOf(c: ChunkingOptions | undefined): SplitOptions {
  const o: SplitOptions = {
    chunkSize: c?.chunkSize || undefined,
    chunkOverlap: c?.chunkOverlap || undefined,
    chunkMinSize: c?.chunkMinSize || undefined,
    separators: c?.separators.length ? c.separators : undefined,
    isSeparatorRegex: c?.isSeparatorRegex || undefined,
    preset: (c?.preset || undefined) as SplitOptions["preset"],
    disableChunking: c?.disableChunking || undefined,
  };
  try {
    validateSplitOptions(o);
  } catch (err) {
    if (err instanceof IngestError)
      throw invalidArgument(err.message, `chunking.${snake(err.param ?? "")}`.replace(/\.$/, ""), err.reason);
    throw err;
  }
  return o;
}

const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** A parse failure is the caller's: a clear message and its reason (`content[2]` for a bad JSON item), nothing created. */
export function ingestErrorToConnect(err: unknown): never {
  if (err instanceof IngestError) throw invalidArgument(err.message, `content${err.param ?? ""}`, err.reason);
  throw err;
}
