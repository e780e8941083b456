import { Code } from "@connectrpc/connect";
import { rpcError } from "../platform/errors.js";
import type { Learned } from "./model-store.js";
import type { ModelTypeName, ProviderTypeName } from "./validation.js";

/** An upstream to check before it is registered. */
export interface ProbeTarget {
  type: ProviderTypeName;
  /** Base URL, without a trailing slash. */
  url: string;
  key: string | null;
  upstreamModel: string;
  modelType: ModelTypeName;
}

/**
 * Checks that an upstream answers and serves the model, and learns what it can: the max context length (vLLM's
 * `/v1/models` `max_model_len`, TEI's `/info` `max_input_length`) and, for an embeddings model, the vector size
 * (one `/v1/embeddings` call). Throws FailedPrecondition with a clear message when the provider cannot be used.
 */
export type Probe = (target: ProbeTarget) => Promise<Learned>;

/**
 * Probe failures are FailedPrecondition (HTTP 409 through the bridge), not Unavailable: the gateway is fine, the
 * request cannot succeed until the upstream is fixed, and gRPC/Connect retry policies must not re-probe a dead
 * host on their own. The reason tells which case it is. The key never appears in a message.
 */
function refused(message: string, reason: string, cause?: unknown) {
  return rpcError(Code.FailedPrecondition, message, reason, { cause });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null;
const positiveInt = (v: unknown): number | null => (typeof v === "number" && Number.isInteger(v) && v > 0 ? v : null);

/** The probe used in production: global fetch, one request at a time, each bounded by `timeoutMs`. */
export function createHttpProbe(opts: { timeoutMs?: number } = {}): Probe {
  const timeoutMs = opts.timeoutMs ?? 10_000;

  async function call(target: ProbeTarget, path: string, body?: unknown): Promise<unknown> {
    const url = `${target.url}${path}`;
    const headers: Record<string, string> = { accept: "application/json" };
    if (target.key) headers.authorization = `Bearer ${target.key}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    let res: Response;
    try {
      res = await fetch(url, {
        method: body === undefined ? "GET" : "POST",
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
        redirect: "error",
      });
    } catch (err) {
      const name = (err as Error).name;
      if (name === "TimeoutError" || name === "AbortError") {
        throw refused(`The upstream did not answer ${url} within ${timeoutMs / 1000} s.`, "PROVIDER_UNREACHABLE", err);
      }
      const code = (err as { cause?: { code?: string } }).cause?.code;
      throw refused(`Could not reach the upstream at ${url}${code ? ` (${code})` : ""}.`, "PROVIDER_UNREACHABLE", err);
    }
    const text = await res.text().catch(() => "");
    if (!res.ok) {
      const hint = res.status === 401 || res.status === 403 ? " (check the provider's key)" : "";
      throw refused(`The upstream answered ${url} with HTTP ${res.status}${hint}.`, "PROVIDER_UPSTREAM_ERROR");
    }
    try {
      return JSON.parse(text);
    } catch (err) {
      throw refused(`The upstream did not answer ${url} with JSON.`, "PROVIDER_UPSTREAM_ERROR", err);
    }
  }

  async function openAIModels(target: ProbeTarget): Promise<number | null> {
    const body = await call(target, "/v1/models");
    const data = isObject(body) && Array.isArray(body.data) ? body.data : null;
    if (!data) throw refused(`${target.url}/v1/models did not return a model list.`, "PROVIDER_UPSTREAM_ERROR");
    const entry = data.find((m) => isObject(m) && m.id === target.upstreamModel);
    if (!isObject(entry)) {
      const served = data
        .map((m) => (isObject(m) && typeof m.id === "string" ? m.id : ""))
        .filter(Boolean)
        .slice(0, 10);
      throw refused(
        `The upstream at ${target.url} does not serve '${target.upstreamModel}' (it serves: ${served.join(", ") || "nothing"}).`,
        "PROVIDER_MODEL_NOT_SERVED",
      );
    }
    return positiveInt(entry.max_model_len) ?? positiveInt(entry.max_context_length);
  }

  async function teiInfo(target: ProbeTarget): Promise<number | null> {
    const info = await call(target, "/info");
    if (!isObject(info)) throw refused(`${target.url}/info did not return an object.`, "PROVIDER_UPSTREAM_ERROR");
    if (typeof info.model_id === "string" && info.model_id !== target.upstreamModel) {
      throw refused(
        `The upstream at ${target.url} serves '${info.model_id}', not '${target.upstreamModel}'.`,
        "PROVIDER_MODEL_NOT_SERVED",
      );
    }
    // TEI answers /rerank only for a cross-encoder: refuse one that says it runs something else (an embedder).
    const kind = isObject(info.model_type) ? Object.keys(info.model_type) : [];
    if (target.modelType === "text-classification" && kind.length > 0 && !kind.includes("reranker")) {
      throw refused(
        `The upstream at ${target.url} runs a model of type '${kind.join("/")}', not a reranker.`,
        "PROVIDER_MODEL_NOT_SERVED",
      );
    }
    return positiveInt(info.max_input_length);
  }

  async function vectorSize(target: ProbeTarget): Promise<number> {
    const body = await call(target, "/v1/embeddings", { model: target.upstreamModel, input: "ping" });
    const first = isObject(body) && Array.isArray(body.data) ? body.data[0] : undefined;
    const embedding = isObject(first) ? first.embedding : undefined;
    if (!Array.isArray(embedding) || embedding.length === 0 || !embedding.every((x) => typeof x === "number")) {
      throw refused(`${target.url}/v1/embeddings did not return an embedding.`, "PROVIDER_UPSTREAM_ERROR");
    }
    return embedding.length;
  }

  return async (target) => {
    const maxContextLength = target.type === "tei" ? await teiInfo(target) : await openAIModels(target);
    const size = target.modelType === "text-embeddings-inference" ? await vectorSize(target) : null;
    return { maxContextLength, vectorSize: size };
  };
}
