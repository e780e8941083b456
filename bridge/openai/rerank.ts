import { create, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import {
  type RerankRequest,
  RerankRequestSchema,
  type RerankResponse,
} from "../../gen/passerelle/rerank/v1/rerank_service_pb.js";
import { InvalidRequest } from "./invalid-request.js";
import { impactJson } from "./usage.js";

/**
 * Pure translations between Cohere's rerank JSON (`POST /v1/rerank`, the shape the reference system and OpenWebUI
 * use) and the rerank protos. Documents are plain strings or Cohere's `{text}` objects; `return_documents` is
 * answered here from the request's own texts, in Cohere's `document: {text}` form.
 */

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

const KNOWN = new Set(["model", "query", "documents", "top_n", "return_documents", "user"]);

function documentsOf(v: unknown): string[] {
  if (!Array.isArray(v)) throw new InvalidRequest("'documents' must be an array of strings.", "documents");
  if (v.length === 0) throw new InvalidRequest("'documents' must not be empty.", "documents");
  return v.map((d, i) => {
    if (typeof d === "string") return d;
    if (isObject(d) && typeof d.text === "string") return d.text;
    throw new InvalidRequest(`'documents[${i}]' must be a string or an object with a 'text' string.`, "documents");
  });
}

/** Reads a Cohere rerank request body. Throws InvalidRequest (400 with `param`) for what cannot be read. */
export function rerankRequestFromJson(body: unknown): RerankRequest {
  if (!isObject(body)) throw new InvalidRequest("The request body must be a JSON object.", "body");
  if (typeof body.model !== "string" || !body.model) {
    throw new InvalidRequest("'model' must be a non-empty string.", "model");
  }
  if (typeof body.query !== "string" || !body.query.trim()) {
    throw new InvalidRequest("'query' must be a non-empty string.", "query");
  }
  const req = create(RerankRequestSchema, {
    model: body.model,
    query: body.query,
    documents: documentsOf(body.documents),
  });
  if (body.top_n != null) {
    const n = body.top_n;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 1) {
      throw new InvalidRequest("'top_n' must be a positive integer.", "top_n");
    }
    // Larger than any list: the same as all of them.
    req.topN = Math.min(n, 0xffffffff);
  }
  if (body.return_documents != null) {
    if (typeof body.return_documents !== "boolean") {
      throw new InvalidRequest("'return_documents' must be a boolean.", "return_documents");
    }
    req.returnDocuments = body.return_documents;
  }
  if (body.user != null) {
    if (typeof body.user !== "string") throw new InvalidRequest("'user' must be a string.", "user");
    req.user = body.user;
  }
  for (const [k, v] of Object.entries(body)) {
    if (KNOWN.has(k) || v === undefined) continue;
    req.extra ??= {};
    (req.extra as JsonObject)[k] = v as JsonValue;
  }
  return req;
}

/** The answer in Cohere's shape, with OpenAI-style usage (plus the gateway's cost and carbon, as embeddings). */
export function rerankResponseJson(res: RerankResponse): JsonObject {
  return {
    object: "list",
    id: res.id,
    model: res.model,
    results: res.results.map((r) => {
      const out: JsonObject = { index: r.index, relevance_score: r.relevanceScore };
      if (r.document !== undefined) out.document = { text: r.document };
      return out;
    }),
    usage: {
      prompt_tokens: res.usage?.promptTokens ?? 0,
      total_tokens: res.usage?.totalTokens ?? 0,
      ...(res.usage ? impactJson(res.usage) : {}),
    },
  };
}
