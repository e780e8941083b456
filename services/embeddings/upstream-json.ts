import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import type { CreateEmbeddingsRequest } from "../../gen/passerelle/embeddings/v1/embeddings_service_pb.js";
import { UpstreamError } from "../inference/index.js";
import { countTokens } from "../platform/tokenizer.js";

/**
 * Pure translations between the embeddings protos and the OpenAI-compatible JSON of upstreams (vLLM, TEI, …).
 * Upstreams always get the list form of the input (`string[]` or `number[][]`): unambiguous, and accepted by every
 * OpenAI-compatible server, whatever single form the client used.
 */

/** The request's inputs, in order, as sent upstream; empty when none. */
export type EmbeddingInputs = string[] | number[][];

export function inputsOf(req: CreateEmbeddingsRequest): EmbeddingInputs {
  switch (req.input.case) {
    case "texts":
      return req.input.value.texts;
    case "tokens":
      return req.input.value.inputs.map((t) => t.ids);
    default:
      return [];
  }
}

/**
 * The body of one upstream call. Always asks for floats, whatever the client wants: the gateway encodes base64
 * itself, so it does not depend on the upstream supporting it. Only what the client set is sent.
 */
export function upstreamEmbeddingsBody(
  req: CreateEmbeddingsRequest,
  upstreamModel: string,
  input: EmbeddingInputs,
): JsonObject {
  const b: JsonObject = {
    ...(req.extra ?? {}),
    model: upstreamModel,
    input: input as JsonValue,
    encoding_format: "float",
  };
  if (req.dimensions !== undefined) b.dimensions = req.dimensions;
  if (req.user !== undefined) b.user = req.user;
  return b;
}

export interface BatchUsage {
  promptTokens: number;
  totalTokens: number;
}

/** One upstream call's vectors (in its own input order) and token counts. */
export interface BatchResult {
  vectors: number[][];
  /** The upstream's counts; undefined when it sent no `usage` (the caller counts then). */
  usage: BatchUsage | undefined;
}

/**
 * Tokens of inputs, for an upstream that sends no `usage`: exact for token ids, an estimate for texts (OpenAI's
 * o200k encoding, as chat does; the model's own tokenizer may differ).
 */
export function countInputTokens(input: EmbeddingInputs): number {
  let n = 0;
  for (const item of input) n += typeof item === "string" ? (item ? countTokens(item) : 0) : item.length;
  return n;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

function protocol(message: string): UpstreamError {
  return new UpstreamError({ kind: "protocol", message });
}

/** float32 values (what the RPC carries); a base64 string is decoded too, for an upstream that ignored `float`. */
function vector(v: unknown, where: string): number[] {
  if (typeof v === "string") {
    const buf = Buffer.from(v, "base64");
    if (buf.length % 4 !== 0) throw protocol(`upstream sent a malformed base64 embedding at ${where}`);
    const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
    const out = new Array<number>(buf.length / 4);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
    return out;
  }
  if (!Array.isArray(v) || v.length === 0) throw protocol(`upstream sent no embedding at ${where}`);
  const out = new Array<number>(v.length);
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (typeof x !== "number") throw protocol(`upstream sent a non-number in the embedding at ${where}`);
    out[i] = Math.fround(x);
  }
  return out;
}

/**
 * Reads an upstream `list` of embeddings for `expected` inputs: one vector per input, placed by its `index` (an
 * upstream may answer out of order). Anything else is a protocol failure.
 */
export function batchFromJson(body: unknown, expected: number): BatchResult {
  const data = isObject(body) && Array.isArray(body.data) ? body.data : undefined;
  if (!data || data.length !== expected) {
    throw protocol(`upstream answered ${data ? data.length : "no"} embeddings for ${expected} inputs`);
  }
  const vectors = new Array<number[]>(expected);
  data.forEach((d, i) => {
    const index = isObject(d) ? d.index : undefined;
    const at = typeof index === "number" ? index : i;
    if (!Number.isInteger(at) || at < 0 || at >= expected || vectors[at] !== undefined) {
      throw protocol("upstream sent embeddings with invalid or repeated indexes");
    }
    vectors[at] = vector(isObject(d) ? d.embedding : undefined, `data[${i}]`);
  });
  const usage = isObject(body) && isObject(body.usage) ? body.usage : undefined;
  // A usage whose count is not one (10.5, -5, absent) is no usage: the caller counts, as chat does, rather than bill 0.
  const promptTokens = usage?.prompt_tokens ?? usage?.total_tokens;
  if (!usage || !isCount(promptTokens)) return { vectors, usage: undefined };
  return {
    vectors,
    usage: { promptTokens, totalTokens: isCount(usage.total_tokens) ? usage.total_tokens : promptTokens },
  };
}
