import type { JsonObject, MessageInitShape } from "@bufbuild/protobuf";
import type { SearchToolSchema } from "../../gen/passerelle/inference/v1/chat_pb.js";
import { SEARCH_METHODS, type SearchJson, searchRequestToProto } from "../mappers/collections.js";
import { InvalidRequest } from "./invalid-request.js";

/** The fields of the reference system's `search` tool, besides `type`; `template` is Passerelle's. */
const FIELDS = new Set([
  "type",
  "collection_ids",
  "collections",
  "document_ids",
  "filters",
  "metadata_filters",
  "method",
  "limit",
  "offset",
  "score_threshold",
  "rrf_k",
  "rff_k",
  "semantic_weight",
  "lexical_weight",
  "template",
]);

const strings = (v: unknown, param: string): string[] | undefined => {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string"))
    throw new InvalidRequest(`'${param}' must be a list of strings.`, param);
  return v;
};
const number = (v: unknown, param: string): number | undefined => {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) throw new InvalidRequest(`'${param}' must be a number.`, param);
  return v;
};

/**
 * `{"type": "search", collection_ids, document_ids, metadata_filters, method, limit, offset, score_threshold,
 * rrf_k, template}` in a chat request's tools: the gateway runs it (the upstream never sees it). Read with the same
 * mapper as `POST /v1/search`, so both accept the same filters and aliases; the query is the last user message.
 */
export function searchToolFromJson(t: JsonObject, p: string): MessageInitShape<typeof SearchToolSchema> {
  const unknown = Object.keys(t).find((k) => !FIELDS.has(k));
  if (unknown) throw new InvalidRequest(`'${p}.${unknown}' is not a field of the search tool.`, `${p}.${unknown}`);
  const method = t.method ?? undefined;
  if (method !== undefined && !(SEARCH_METHODS as readonly unknown[]).includes(method))
    throw new InvalidRequest(`'${p}.method' must be one of ${SEARCH_METHODS.join(", ")}.`, `${p}.method`);
  const filters = (key: "filters" | "metadata_filters") => {
    const v = t[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "object" || Array.isArray(v))
      throw new InvalidRequest(`'${p}.${key}' must be an object.`, `${p}.${key}`);
    return v as JsonObject;
  };
  const body: SearchJson = {
    query: "",
    collection_ids: strings(t.collection_ids, `${p}.collection_ids`),
    collections: strings(t.collections, `${p}.collections`),
    document_ids: strings(t.document_ids, `${p}.document_ids`),
    filters: filters("filters"),
    metadata_filters: filters("metadata_filters"),
    method: method as SearchJson["method"],
    limit: number(t.limit, `${p}.limit`),
    offset: number(t.offset, `${p}.offset`),
    score_threshold: number(t.score_threshold, `${p}.score_threshold`),
    rrf_k: number(t.rrf_k, `${p}.rrf_k`),
    rff_k: number(t.rff_k, `${p}.rff_k`),
    semantic_weight: number(t.semantic_weight, `${p}.semantic_weight`),
    lexical_weight: number(t.lexical_weight, `${p}.lexical_weight`),
  };
  if (t.template !== undefined && typeof t.template !== "string")
    throw new InvalidRequest(`'${p}.template' must be a string.`, `${p}.template`);
  try {
    return { request: searchRequestToProto(body), template: (t.template as string | undefined) ?? "" };
  } catch (err) {
    // The mapper names fields from the body's root: they are the tool's here.
    if (err instanceof InvalidRequest)
      throw new InvalidRequest(err.message.replace(/'(?=[a-z_])/, `'${p}.`), `${p}.${err.param}`);
    throw err;
  }
}
