import type { JsonObject } from "@bufbuild/protobuf";
import type { RerankRequest } from "../../gen/passerelle/rerank/v1/rerank_service_pb.js";
import { UpstreamError } from "../inference/index.js";
import { countTokens } from "../platform/tokenizer.js";

/**
 * Pure translations between the rerank protos and the two upstream dialects:
 * - TEI: `POST /rerank` `{query, texts, raw_scores}` → `[{index, score}]`, no usage and no `top_n`;
 * - vLLM (Cohere/Jina shape): `POST /v2/rerank` `{model, query, documents, top_n}` →
 *   `{results: [{index, relevance_score}], usage: {total_tokens}}`.
 * Whatever the upstream did, the gateway sorts and cuts itself: an upstream that ignores `top_n` or answers out of
 * order changes nothing for the client.
 */

export type Dialect = "tei" | "vllm";

/** TEI speaks its own dialect; vLLM and the other OpenAI-compatible servers speak Cohere's. */
export function dialectOf(providerType: string | undefined): Dialect {
  return providerType === "tei" ? "tei" : "vllm";
}

/**
 * Texts per TEI call: TEI refuses more than its `--max-client-batch-size`, 32 by default (422). Larger requests are
 * asked in slices; a cross-encoder scores each pair on its own, so slicing changes no score.
 */
export const TEI_MAX_BATCH = 32;

export function upstreamPath(dialect: Dialect): string {
  return dialect === "tei" ? "/rerank" : "/v2/rerank";
}

const COHERE_FIELDS = ["model", "documents", "top_n", "user", "return_documents"] as const;

/** The body of the upstream call; the client's extras first, so that they cannot replace what the gateway decided. */
export function upstreamRerankBody(
  req: RerankRequest,
  dialect: Dialect,
  upstreamModel: string,
  documents: string[] = req.documents,
): JsonObject {
  const extra = (req.extra ?? {}) as JsonObject;
  if (dialect === "tei") {
    // Normalized scores in [0, 1], what Cohere answers: TEI's raw logits would not compare across models. Cohere's
    // own names are the gateway's to map, never TEI's to read.
    const b: JsonObject = { ...extra, query: req.query, texts: documents, raw_scores: false };
    for (const k of COHERE_FIELDS) delete b[k];
    return b;
  }
  const b: JsonObject = { ...extra, model: upstreamModel, query: req.query, documents };
  if (req.topN !== undefined) b.top_n = req.topN;
  if (req.user !== undefined) b.user = req.user;
  return b;
}

/**
 * Tokens of a rerank request, for limits and prices before forwarding and for an upstream that sends no usage: a
 * cross-encoder reads the query once per document, so query × documents plus the documents (cl100k, as embeddings
 * counts; the model's own tokenizer may differ).
 */
export function countRerankTokens(query: string, documents: readonly string[]): number {
  const q = query ? countTokens(query) : 0;
  let n = 0;
  for (const d of documents) n += q + (d ? countTokens(d) : 0);
  return n;
}

export interface Scored {
  index: number;
  score: number;
}

export interface UpstreamRerank {
  /** In the upstream's order, each index in range and at most once. */
  scores: Scored[];
  /** The upstream's token count; undefined when it sent none (the caller counts then). */
  totalTokens: number | undefined;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function protocol(message: string): UpstreamError {
  return new UpstreamError({ kind: "protocol", message });
}

/**
 * Reads an upstream answer for `expected` documents. Every entry must name a document in range, at most once, with a
 * finite score, and there must be at least `minimum` of them (fewer than the documents only for an upstream that
 * applied `top_n` itself); anything else is a protocol failure (the provider is counted unhealthy, the client gets
 * 503).
 */
export function rerankFromJson(body: unknown, dialect: Dialect, expected: number, minimum: number): UpstreamRerank {
  const list = dialect === "tei" ? body : isObject(body) ? body.results : undefined;
  if (!Array.isArray(list)) throw protocol("upstream sent no rerank results");
  if (list.length < minimum || list.length > expected) {
    throw protocol(`upstream answered ${list.length} rerank results for ${expected} documents`);
  }
  const seen = new Set<number>();
  const scores = list.map((r, i): Scored => {
    const index = isObject(r) ? r.index : undefined;
    if (typeof index !== "number" || !Number.isInteger(index) || index < 0 || index >= expected || seen.has(index)) {
      throw protocol("upstream sent rerank results with invalid or repeated indexes");
    }
    seen.add(index);
    const score = isObject(r) ? (dialect === "tei" ? r.score : r.relevance_score) : undefined;
    if (typeof score !== "number" || !Number.isFinite(score)) {
      throw protocol(`upstream sent no finite score at results[${i}]`);
    }
    return { index, score };
  });
  const usage = dialect === "vllm" && isObject(body) && isObject(body.usage) ? body.usage : undefined;
  const total = usage?.total_tokens ?? usage?.prompt_tokens;
  const totalTokens = typeof total === "number" && Number.isInteger(total) && total >= 0 ? total : undefined;
  return { scores, totalTokens };
}

/** Most relevant first, ties by document order (stable across upstreams), at most `topN`. */
export function ranked(scores: readonly Scored[], topN: number | undefined): Scored[] {
  const sorted = [...scores].sort((a, b) => b.score - a.score || a.index - b.index);
  return topN === undefined ? sorted : sorted.slice(0, topN);
}
