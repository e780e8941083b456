import type { IncomingHttpHeaders } from "node:http";

/**
 * What a simulated model serves: vLLM runs one model per server, the simulator may serve several. `both` is chat and
 * embeddings; `transcription` a Whisper-like speech-to-text model (`/v1/audio/transcriptions`); `rerank` a
 * cross-encoder (vLLM's `/v2/rerank`, TEI's `/rerank` and `/info`).
 */
export type ModelKind = "chat" | "embeddings" | "both" | "transcription" | "rerank";

export interface SimulatedModel {
  /** The served model name (what `model` must be in requests, and what `/v1/models` lists). */
  id: string;
  /** vLLM's `max_model_len`: prompt + completion tokens must fit. */
  maxModelLen: number;
  kind: ModelKind;
  /** Vector size for embeddings models; `embeddingDimensions` when absent. */
  dimensions?: number;
  /** `root` in `/v1/models` (the model path vLLM loaded); the id when absent. */
  root?: string;
  /** Transcription models: false refuses `verbose_json` as vLLM does for models without segment timestamps. */
  segmentTimestamps?: boolean;
}

/**
 * vLLM's error body. `current` is what vLLM ≥ 0.10.1 sends (vllm-project/vllm PR #22099):
 * `{"error":{"message","type","param","code":<int>}}`; `legacy` is the flat shape of older releases:
 * `{"object":"error","message","type","param","code":<int>}`.
 */
export type ErrorShape = "current" | "legacy";

export interface SimulatorOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  models: SimulatedModel[];
  /** Time to first token (ms), from the moment the request holds a slot. */
  ttftMs: number;
  /** Time between tokens (ms). */
  interTokenMs: number;
  /** Tokens generated when nothing stops earlier (the model's natural end of sequence). */
  completionTokens: number;
  /** Probability (0..1) that a chat or embeddings request fails at once with `failureStatus`. */
  failureRate: number;
  failureStatus: number;
  /** `retry-after` header (seconds) on injected failures; none when null. */
  failureRetryAfterS: number | null;
  /** Streams: after N token chunks, send `data: {"error":…}` then `data: [DONE]` (as vLLM does). Non-stream: 500. */
  midStreamErrorAfter: number | null;
  /**
   * After N token chunks, send nothing more and keep the connection open (pings, if on, go on). Non-stream
   * requests that would generate more than N tokens never get an answer.
   */
  stallAfter: number | null;
  /** Send `: ping` SSE comments this often on open streams; off when null or 0. */
  pingEveryMs: number | null;
  /** When set, `/v1/*` requires `Authorization: Bearer <key>` (vLLM `--api-key`), else 401 `{"error":"Unauthorized"}`. */
  apiKey: string | null;
  /** Vector size of embeddings models that do not set `dimensions`. */
  embeddingDimensions: number;
  /** vLLM `--max-num-seqs`: requests beyond it wait (reported as `vllm:num_requests_waiting`). */
  maxNumSeqs: number;
  /** `/health` answers 200 when true, 503 when false. */
  healthy: boolean;
  errorShape: ErrorShape;
  /**
   * Serialize exactly as vLLM does, including the nulls OpenAI's schema rejects (`message.annotations: null`,
   * `function_call: null`, `system_fingerprint: null`, `usage.prompt_tokens_details: null`, logprobs without
   * `refusal`). Off by default: the output then validates against OpenAI's OpenAPI document.
   */
  vllmQuirks: boolean;
  /** Never send `usage` (some OpenAI-compatible servers do not): the gateway must count tokens itself. */
  omitUsage: boolean;
}

export const DEFAULT_MODELS: readonly SimulatedModel[] = [
  { id: "sim-chat", maxModelLen: 8192, kind: "chat" },
  { id: "sim-embed", maxModelLen: 8192, kind: "embeddings" },
];

export function defaultOptions(): SimulatorOptions {
  return {
    host: "127.0.0.1",
    port: 0,
    models: DEFAULT_MODELS.map((m) => ({ ...m })),
    ttftMs: 0,
    interTokenMs: 0,
    completionTokens: 16,
    failureRate: 0,
    failureStatus: 500,
    failureRetryAfterS: null,
    midStreamErrorAfter: null,
    stallAfter: null,
    pingEveryMs: null,
    apiKey: null,
    embeddingDimensions: 384,
    maxNumSeqs: 256,
    healthy: true,
    errorShape: "current",
    vllmQuirks: false,
    omitUsage: false,
  };
}

/** Live counters (the same object all along; `reset()` zeroes it in place). Routes are request paths. */
export interface SimulatorStats {
  /** Requests received, by path (every request, whatever its outcome). */
  requests: Record<string, number>;
  /** Chat and embeddings requests being handled now (waiting for a slot or generating). */
  inFlight: number;
  /** Of those, the ones holding a slot (`vllm:num_requests_running`). */
  running: number;
  /** Of those, the ones waiting for a slot (`vllm:num_requests_waiting`). */
  waiting: number;
  /** Chat and embeddings responses written to the end (any status). */
  completed: number;
  /** Chat and embeddings requests whose client went away before the response ended. */
  cancelled: number;
  /** Injected failures (`failureRate`). */
  failed: number;
  /** Last JSON body received, by path. */
  lastRequest: Record<string, unknown>;
  /** Last request headers received, by path. */
  lastHeaders: Record<string, IncomingHttpHeaders>;
}

export type SimulatorEventName = "request" | "completed" | "cancelled";

export interface SimulatorEvent {
  name: SimulatorEventName;
  /** The request's id (its `x-request-id`). */
  requestId: string;
  path: string;
  model?: string;
  /** performance.now() when it happened. */
  at: number;
}
