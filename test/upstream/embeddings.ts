import { findModel, type RequestContext, sleep } from "./context.js";
import { badRequest, isRecord, optionalInt, SimulatorHttpError, sendJson } from "./http.js";
import { countTextTokens, gaussian, randomId, rngFrom } from "./text.js";

/**
 * `POST /v1/embeddings` as vLLM answers it: deterministic unit vectors seeded by the model and the input, a
 * matryoshka prefix when `dimensions` is smaller (the first d components, normalized again), `base64` as
 * little-endian float32 bytes like OpenAI. The time to first token stands for the forward pass.
 */

type Item = string | number[];

function parseInput(v: unknown): Item[] {
  const isTokens = (x: unknown): x is number[] => Array.isArray(x) && x.every((t) => Number.isInteger(t));
  if (typeof v === "string") return [v];
  if (Array.isArray(v) && v.length > 0) {
    if (v.every((x) => typeof x === "string")) return v as string[];
    if (isTokens(v)) return [v];
    if (v.every(isTokens)) return v;
  }
  if (Array.isArray(v) && v.length === 0) {
    throw new SimulatorHttpError(400, "Input cannot be empty.", "input", "BadRequestError");
  }
  throw badRequest(
    "input: Input should be a string, a list of strings, a list of token ids or a list of lists",
    "input",
  );
}

/** The first `dims` components of the model's vector for `item`, normalized to unit length. */
export function embeddingVector(modelId: string, item: Item, fullDims: number, dims = fullDims): number[] {
  const rng = rngFrom(`${modelId}\u0000${JSON.stringify(item)}`);
  const full: number[] = [];
  for (let i = 0; i < fullDims; i++) full.push(gaussian(rng));
  const v = full.slice(0, dims);
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0)) || 1;
  return v.map((x) => x / norm);
}

/** OpenAI's base64 encoding: float32, little-endian. */
export function toBase64(v: number[]): string {
  const buf = Buffer.alloc(v.length * 4);
  v.forEach((x, i) => {
    buf.writeFloatLE(x, i * 4);
  });
  return buf.toString("base64");
}

export async function handleEmbeddings(ctx: RequestContext, body: unknown): Promise<void> {
  const { opts, cancel } = ctx;
  if (!isRecord(body)) throw badRequest("Input should be a valid dictionary or object to extract fields from");
  const model = findModel(opts, body.model, "embeddings");
  ctx.setModel(model.id);
  const items = parseInput(body.input);
  const format = body.encoding_format ?? "float";
  if (format !== "float" && format !== "base64") {
    throw badRequest("encoding_format: Input should be 'float' or 'base64'", "encoding_format");
  }
  const fullDims = model.dimensions ?? opts.embeddingDimensions;
  const dims = optionalInt(body, "dimensions") ?? fullDims;
  if (dims < 1 || dims > fullDims) {
    throw new SimulatorHttpError(
      400,
      `dimensions must be between 1 and ${fullDims}, got ${dims}.`,
      "dimensions",
      "BadRequestError",
    );
  }
  const tokens = items.map((it) => (typeof it === "string" ? countTextTokens(it) : it.length));
  for (const t of tokens) {
    if (t > model.maxModelLen) {
      throw new SimulatorHttpError(
        400,
        `This model's maximum context length is ${model.maxModelLen} tokens. However, you requested ${t} tokens ` +
          "in the input for embedding generation. Please reduce the length of the input.",
        "input_tokens",
        "BadRequestError",
      );
    }
  }
  const release = await ctx.acquireSlot(model.id);
  try {
    await sleep(opts.ttftMs, cancel);
  } finally {
    release();
  }
  const data = items.map((item, index) => {
    const v = embeddingVector(model.id, item, fullDims, dims);
    return { index, object: "embedding", embedding: format === "base64" ? toBase64(v) : v };
  });
  const promptTokens = tokens.reduce((s, t) => s + t, 0);
  const usage: Record<string, unknown> = {
    prompt_tokens: promptTokens,
    total_tokens: promptTokens,
    completion_tokens: 0,
  };
  if (opts.vllmQuirks) usage.prompt_tokens_details = null;
  sendJson(ctx.res, 200, {
    id: `embd-${randomId()}`,
    object: "list",
    created: Math.floor(Date.now() / 1000),
    model: typeof body.model === "string" ? body.model : model.id,
    data,
    usage,
  });
  ctx.recordDone(model.id, promptTokens, 0, "stop");
}
