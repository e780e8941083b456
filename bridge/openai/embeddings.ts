import { create, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { EncodingFormat } from "../../gen/passerelle/embeddings/v1/embeddings_pb.js";
import {
  type CreateEmbeddingsRequest,
  CreateEmbeddingsRequestSchema,
  type CreateEmbeddingsResponse,
} from "../../gen/passerelle/embeddings/v1/embeddings_service_pb.js";
import { InvalidRequest } from "./chat.js";
import { impactJson } from "./usage.js";

/**
 * Pure translations between OpenAI's embeddings JSON and the embeddings protos, at the REST edge. The RPC carries
 * floats; `encoding_format: "base64"` is applied here, on the way out, exactly as OpenAI encodes it.
 */

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isTokenId = (v: unknown): v is number =>
  typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;

const KNOWN = new Set(["model", "input", "dimensions", "encoding_format", "user"]);

const FORMATS: Record<string, EncodingFormat> = { float: EncodingFormat.FLOAT, base64: EncodingFormat.BASE64 };

function tokens(v: unknown[], param: string): { $typeName: "passerelle.embeddings.v1.TokenIds"; ids: number[] } {
  if (v.length === 0) throw new InvalidRequest(`'${param}' must not be an empty token list.`, param);
  v.forEach((t, i) => {
    if (!isTokenId(t)) throw new InvalidRequest(`'${param}[${i}]' must be a non-negative integer token id.`, param);
  });
  return { $typeName: "passerelle.embeddings.v1.TokenIds", ids: v as number[] };
}

const INPUT_SHAPE = "'input' must be a string, an array of strings, an array of token ids or an array of such arrays.";

/** The input as texts or token lists; a single string or token list is the one-element form. */
function input(v: unknown): CreateEmbeddingsRequest["input"] {
  if (typeof v === "string")
    return { case: "texts", value: { $typeName: "passerelle.embeddings.v1.TextInputs", texts: [v] } };
  if (!Array.isArray(v)) throw new InvalidRequest(INPUT_SHAPE, "input");
  if (v.length === 0) throw new InvalidRequest("'input' must not be empty.", "input");
  const first = v[0];
  if (typeof first === "string") {
    v.forEach((s, i) => {
      if (typeof s !== "string") throw new InvalidRequest(`'input[${i}]' must be a string like the others.`, "input");
    });
    return { case: "texts", value: { $typeName: "passerelle.embeddings.v1.TextInputs", texts: v as string[] } };
  }
  if (typeof first === "number") {
    return {
      case: "tokens",
      value: { $typeName: "passerelle.embeddings.v1.TokenInputs", inputs: [tokens(v, "input")] },
    };
  }
  if (Array.isArray(first)) {
    const inputs = v.map((t, i) => {
      if (!Array.isArray(t))
        throw new InvalidRequest(`'input[${i}]' must be an array of token ids like the others.`, "input");
      return tokens(t, `input[${i}]`);
    });
    return { case: "tokens", value: { $typeName: "passerelle.embeddings.v1.TokenInputs", inputs } };
  }
  throw new InvalidRequest(INPUT_SHAPE, "input");
}

/** Reads an OpenAI embeddings request body. Throws InvalidRequest (400 with `param`) for what cannot be read. */
export function embeddingsRequestFromJson(body: unknown): CreateEmbeddingsRequest {
  if (!isObject(body)) throw new InvalidRequest("The request body must be a JSON object.", "body");
  if (typeof body.model !== "string" || !body.model)
    throw new InvalidRequest("'model' must be a non-empty string.", "model");
  const req = create(CreateEmbeddingsRequestSchema, { model: body.model, input: input(body.input) });
  if (body.dimensions != null) {
    const d = body.dimensions;
    if (typeof d !== "number" || !Number.isInteger(d) || d < 1 || d > 0xffffffff) {
      throw new InvalidRequest("'dimensions' must be a positive integer.", "dimensions");
    }
    req.dimensions = d;
  }
  if (body.encoding_format != null) {
    const f = typeof body.encoding_format === "string" ? FORMATS[body.encoding_format] : undefined;
    if (f === undefined) throw new InvalidRequest("'encoding_format' must be 'float' or 'base64'.", "encoding_format");
    req.encodingFormat = f;
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

/** OpenAI's base64 embedding: the vector's float32 values, little-endian, base64-encoded. */
export function float32Base64(values: readonly number[]): string {
  const buf = Buffer.allocUnsafe(values.length * 4);
  for (let i = 0; i < values.length; i++) buf.writeFloatLE(values[i] as number, i * 4);
  return buf.toString("base64");
}

/** The answer as OpenAI's `CreateEmbeddingResponse`, vectors written as floats or base64. */
export function embeddingsResponseJson(res: CreateEmbeddingsResponse, format: EncodingFormat): JsonObject {
  const base64 = format === EncodingFormat.BASE64;
  return {
    object: "list",
    data: res.data.map((d) => ({
      object: "embedding",
      index: d.index,
      embedding: base64 ? float32Base64(d.embedding) : d.embedding,
    })),
    model: res.model,
    usage: {
      prompt_tokens: res.usage?.promptTokens ?? 0,
      total_tokens: res.usage?.totalTokens ?? 0,
      ...(res.usage ? impactJson(res.usage) : {}),
    },
  };
}
