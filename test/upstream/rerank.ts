import type { ServerResponse } from "node:http";
import { type RequestContext, sleep } from "./context.js";
import { badRequest, isRecord, SimulatorHttpError, sendJson } from "./http.js";
import { countTextTokens, randomId } from "./text.js";
import type { SimulatedModel, SimulatorOptions } from "./types.js";

/**
 * Rerank in the two dialects the gateway speaks: vLLM's `POST /v2/rerank` (Cohere's shape, with usage) and TEI's
 * `POST /rerank` (a bare list, no usage) with its `GET /info`. The score is the Dice coefficient of the query's and
 * the document's word sets, in [0, 1]: deterministic and meaningful enough for tests to assert an order. The time
 * to first token stands for the forward pass; injected failures apply as for chat and embeddings.
 */

/** TEI's default `--max-client-batch-size`: texts per request at most. */
export const TEI_MAX_CLIENT_BATCH = 32;

const words = (text: string) => new Set(text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []);

/** The simulated relevance of `document` to `query`: 2·|Q∩D| / (|Q|+|D|) over distinct lower-cased words. */
export function overlapScore(query: string, document: string): number {
  const q = words(query);
  const d = words(document);
  if (q.size + d.size === 0) return 0;
  let shared = 0;
  for (const w of q) if (d.has(w)) shared++;
  return (2 * shared) / (q.size + d.size);
}

/** Tokens of one query–document pair as a cross-encoder reads it. */
export function pairTokens(query: string, document: string): number {
  return countTextTokens(query) + countTextTokens(document);
}

/** Most relevant first, ties by document order: how vLLM and TEI both answer. */
function ranked(query: string, documents: readonly string[]): { index: number; score: number }[] {
  return documents
    .map((d, index) => ({ index, score: overlapScore(query, d) }))
    .sort((a, b) => b.score - a.score || a.index - b.index);
}

const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === "string");

/** The model a TEI server runs: the first rerank model, else the first embeddings model (TEI serves one). */
function teiModel(opts: SimulatorOptions): SimulatedModel | undefined {
  return (
    opts.models.find((m) => m.kind === "rerank") ??
    opts.models.find((m) => m.kind === "embeddings" || m.kind === "both")
  );
}

/** TEI's error body: `{error, error_type}`. */
function teiError(res: ServerResponse, status: number, error: string, type: string): void {
  sendJson(res, status, { error, error_type: type });
}

/** `GET /info` as TEI answers it (the probe reads `model_id` and `max_input_length`). */
export function teiInfo(opts: SimulatorOptions): Record<string, unknown> | undefined {
  const m = teiModel(opts);
  if (!m) return undefined;
  return {
    model_id: m.id,
    model_sha: null,
    model_dtype: "float16",
    model_type:
      m.kind === "rerank"
        ? { reranker: { id2label: { "0": "LABEL_0" }, label2id: { LABEL_0: 0 } } }
        : { embedding: { pooling: "cls" } },
    max_concurrent_requests: 512,
    max_input_length: m.maxModelLen,
    max_batch_tokens: 16384,
    max_client_batch_size: TEI_MAX_CLIENT_BATCH,
    tokenization_workers: 4,
    version: "1.5.0",
  };
}

/** Waits for a slot and the forward pass, as embeddings does. */
async function forward(ctx: RequestContext, model: string): Promise<void> {
  const release = await ctx.acquireSlot(model);
  try {
    await sleep(ctx.opts.ttftMs, ctx.cancel);
  } finally {
    release();
  }
}

/** TEI's `POST /rerank` `{query, texts, raw_scores?, return_text?}` → `[{index, score, text?}]`. */
export async function handleTeiRerank(ctx: RequestContext, body: unknown): Promise<void> {
  const model = teiModel(ctx.opts);
  if (model?.kind !== "rerank") {
    return teiError(ctx.res, 424, "model is not a re-ranker model", "Backend");
  }
  ctx.setModel(model.id);
  if (!isRecord(body) || typeof body.query !== "string" || !isStringList(body.texts)) {
    return teiError(
      ctx.res,
      422,
      "Failed to deserialize the JSON body: `query` and `texts` are required",
      "Validation",
    );
  }
  const { query, texts } = body;
  if (texts.length === 0) return teiError(ctx.res, 422, "`texts` cannot be empty", "Validation");
  if (texts.length > TEI_MAX_CLIENT_BATCH) {
    const message = `batch size ${texts.length} > maximum allowed batch size ${TEI_MAX_CLIENT_BATCH}`;
    return teiError(ctx.res, 422, message, "Validation");
  }
  await forward(ctx, model.id);
  // raw_scores: the logit the sigmoid-normalized score came from (clamped away from ±∞).
  const raw = body.raw_scores === true;
  const out = ranked(query, texts).map(({ index, score }) => {
    const p = Math.min(Math.max(score, 1e-6), 1 - 1e-6);
    const r: Record<string, unknown> = { index, score: raw ? Math.log(p / (1 - p)) : score };
    if (body.return_text === true) r.text = texts[index];
    return r;
  });
  sendJson(ctx.res, 200, out);
  const tokens = texts.reduce((s, t) => s + pairTokens(query, t), 0);
  ctx.recordDone(model.id, tokens, 0, "stop");
}

/** vLLM's `POST /v2/rerank` `{model, query, documents, top_n}` → `{id, model, usage, results}`. */
export async function handleVllmRerank(ctx: RequestContext, body: unknown): Promise<void> {
  const { opts } = ctx;
  if (!isRecord(body)) throw badRequest("Input should be a valid dictionary or object to extract fields from");
  const named = body.model;
  if (named != null && typeof named !== "string") throw badRequest("model: Input should be a valid string", "model");
  const model =
    typeof named === "string" ? opts.models.find((m) => m.id === named) : opts.models.find((m) => m.kind === "rerank");
  if (!model) {
    throw new SimulatorHttpError(404, `The model \`${String(named)}\` does not exist.`, "model", "NotFoundError");
  }
  if (model.kind !== "rerank") {
    throw new SimulatorHttpError(400, "The model does not support Rerank (Score) API", null, "BadRequestError");
  }
  ctx.setModel(model.id);
  if (typeof body.query !== "string") throw badRequest("query: Input should be a valid string", "query");
  if (!isStringList(body.documents)) throw badRequest("documents: Input should be a valid list", "documents");
  const { query, documents } = body;
  if (documents.length === 0) throw new SimulatorHttpError(400, "documents must not be empty", "documents");
  const topN = body.top_n ?? 0;
  if (typeof topN !== "number" || !Number.isInteger(topN)) throw badRequest("top_n: Input should be a valid integer");
  for (const d of documents) {
    const n = pairTokens(query, d);
    if (n > model.maxModelLen) {
      throw new SimulatorHttpError(
        400,
        `This model's maximum context length is ${model.maxModelLen} tokens. However, you requested ${n} tokens.`,
        null,
        "BadRequestError",
      );
    }
  }
  await forward(ctx, model.id);
  const all = ranked(query, documents);
  // vLLM: top_n ≤ 0 means all of them.
  const results = (topN > 0 ? all.slice(0, topN) : all).map(({ index, score }) => ({
    index,
    document: { text: documents[index] },
    relevance_score: score,
  }));
  const tokens = documents.reduce((s, d) => s + pairTokens(query, d), 0);
  const answer: Record<string, unknown> = { id: `rerank-${randomId()}`, model: model.id, results };
  if (!opts.omitUsage) answer.usage = { total_tokens: tokens };
  sendJson(ctx.res, 200, answer);
  ctx.recordDone(model.id, tokens, 0, "stop");
}
