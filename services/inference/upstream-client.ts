import { type Dispatcher, type FormData, Pool, errors as undiciErrors } from "undici";
import { openSseStream, ProtocolEnd } from "./sse-stream.js";

/** Where and how to reach one provider's OpenAI-compatible HTTP API. */
export interface UpstreamTarget {
  /** Base URL without `/v1`, e.g. `http://10.0.0.5:8000`. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer`; never logged. */
  apiKey?: string;
  timeouts: UpstreamTimeouts;
}

export interface UpstreamTimeouts {
  /** TCP connect. */
  connectMs: number;
  /** Until the response headers (non-streaming: the whole answer is computed before them). */
  headersMs: number;
  /** Streaming: until the first SSE event after the headers. */
  firstTokenMs: number;
  /** Streaming: longest silence between two body chunks (`: ping` comments count as life). */
  idleMs: number;
  /** The whole exchange. */
  totalMs: number;
}

/** Why an upstream call failed, in terms the router can act on (retry elsewhere or not). */
export type UpstreamFailure =
  | { kind: "connect"; message: string }
  | { kind: "timeout"; phase: "connect" | "headers" | "first_token" | "idle" | "total"; message: string }
  | { kind: "http"; status: number; message: string; body: unknown; retryAfterSeconds?: number }
  | { kind: "stream_error"; message: string; body: unknown }
  | { kind: "protocol"; message: string }
  | { kind: "aborted"; message: string };

export class UpstreamError extends Error {
  constructor(
    readonly failure: UpstreamFailure,
    options?: { cause?: unknown },
  ) {
    super(failure.message, options);
    this.name = "UpstreamError";
  }

  /**
   * Connect errors, 5xx, 429, and 401/403 (the provider refused the gateway's own key: another provider's may be
   * good) may be retried on another provider — if nothing reached the client yet.
   */
  get retryable(): boolean {
    const f = this.failure;
    if (f.kind === "connect") return true;
    if (f.kind === "timeout") return f.phase === "connect";
    if (f.kind === "http") return f.status >= 500 || f.status === 429 || f.status === 401 || f.status === 403;
    return false;
  }
}

export interface JsonResponse {
  status: number;
  body: unknown;
}

export interface UpstreamClient {
  /** POST a JSON body, read a JSON answer. Non-2xx answers throw an `http` failure carrying the upstream message. */
  postJson(target: UpstreamTarget, path: string, body: unknown, signal?: AbortSignal): Promise<JsonResponse>;
  /**
   * POST a multipart/form-data body (file uploads: audio transcription), read a JSON answer; as `postJson` otherwise
   * (timeouts, failures). The form must be undici's own `FormData` (Node's global one is another copy of undici).
   */
  postForm(target: UpstreamTarget, path: string, form: FormData, signal?: AbortSignal): Promise<JsonResponse>;
  /** GET a JSON document (registry probes, health). */
  getJson(target: UpstreamTarget, path: string, signal?: AbortSignal): Promise<JsonResponse>;
  /**
   * POST a JSON body and read Server-Sent Events. Yields each event's data (already split and unframed; comments
   * such as `: ping` are skipped; `[DONE]` ends the iteration). An `{"error":…}` event inside a 200 stream throws a
   * `stream_error` failure. Stopping the iteration, or aborting `signal`, cancels the upstream request at once.
   */
  postStream(target: UpstreamTarget, path: string, body: unknown, signal?: AbortSignal): AsyncIterableIterator<string>;
  close(): Promise<void>;
}

const TIMEOUT_REASON = Symbol("upstream-timeout");

/**
 * HTTP client for model upstreams: one keep-alive undici Pool per origin (TCP_NODELAY, bounded connections), so no
 * request pays a TCP handshake; per-phase timeouts; client aborts propagate to the upstream socket.
 */
export function createUpstreamClient(opts: { connectionsPerOrigin?: number } = {}): UpstreamClient {
  const pools = new Map<string, Pool>();

  /** Each base URL parsed once: its origin (the pool's key) and its path prefix without a trailing slash. */
  const parsed = new Map<string, { origin: string; base: string }>();
  function urlOf(target: UpstreamTarget) {
    let u = parsed.get(target.baseUrl);
    if (!u) {
      const url = new URL(target.baseUrl);
      u = { origin: url.origin, base: url.pathname.replace(/\/$/, "") };
      parsed.set(target.baseUrl, u);
    }
    return u;
  }

  function pool(target: UpstreamTarget): Pool {
    const origin = urlOf(target).origin;
    let p = pools.get(origin);
    if (!p) {
      p = new Pool(origin, {
        connections: opts.connectionsPerOrigin ?? 256,
        pipelining: 1,
        keepAliveTimeout: 60_000,
        connect: { timeout: target.timeouts.connectMs, noDelay: true },
      });
      pools.set(origin, p);
    }
    return p;
  }

  function headers(target: UpstreamTarget, json: boolean, form = false): Record<string, string> {
    const h: Record<string, string> = { accept: json ? "application/json" : "text/event-stream" };
    // A form's content type (with its boundary) is set by undici from the body.
    if (!form) h["content-type"] = "application/json";
    if (target.apiKey) h.authorization = `Bearer ${target.apiKey}`;
    return h;
  }

  function pathOf(target: UpstreamTarget, path: string): string {
    return `${urlOf(target).base}${path}`;
  }

  /**
   * A signal that fires on the caller's abort or on our own deadline, and tells which. One controller per call:
   * the caller's signal is linked by a listener (cheaper than `AbortSignal.any`, measured hot in profiles).
   */
  function deadline(totalMs: number, signal?: AbortSignal) {
    const own = new AbortController();
    const timer = setTimeout(() => own.abort(TIMEOUT_REASON), totalMs);
    const onAbort = () => own.abort(signal?.reason);
    if (signal?.aborted) own.abort(signal.reason);
    else signal?.addEventListener("abort", onAbort, { once: true });
    return {
      signal: own.signal,
      own,
      clear: () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      },
    };
  }

  function translate(err: unknown, phase: "headers" | "total" | "first_token" | "idle"): UpstreamError {
    if (err instanceof UpstreamError) return err;
    if (err === TIMEOUT_REASON || (err instanceof Error && err.cause === TIMEOUT_REASON)) {
      return new UpstreamError({ kind: "timeout", phase, message: `upstream ${phase.replace("_", " ")} timeout` });
    }
    if (err instanceof undiciErrors.ConnectTimeoutError) {
      return new UpstreamError(
        { kind: "timeout", phase: "connect", message: "upstream connect timeout" },
        { cause: err },
      );
    }
    if (err instanceof undiciErrors.HeadersTimeoutError) {
      return new UpstreamError(
        { kind: "timeout", phase: "headers", message: "upstream response timeout" },
        { cause: err },
      );
    }
    if (err instanceof undiciErrors.BodyTimeoutError) {
      return new UpstreamError({ kind: "timeout", phase: "idle", message: "upstream stalled" }, { cause: err });
    }
    if (err instanceof Error && (err.name === "AbortError" || err instanceof undiciErrors.RequestAbortedError)) {
      return new UpstreamError({ kind: "aborted", message: "request aborted" }, { cause: err });
    }
    const code = (err as { code?: string } | undefined)?.code;
    if (code && /^(ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENOTFOUND|EPIPE|UND_ERR_SOCKET|UND_ERR_CLOSED)$/.test(code)) {
      return new UpstreamError({ kind: "connect", message: `upstream unreachable (${code})` }, { cause: err });
    }
    return new UpstreamError({ kind: "protocol", message: "upstream request failed" }, { cause: err });
  }

  function httpFailureOf(to: UpstreamTarget, status: number, raw: string, retryAfter?: string | string[]) {
    const text = redactKey(raw, to);
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // keep text
    }
    const ra = Number(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
    return new UpstreamError({
      kind: "http",
      status,
      message: upstreamMessage(body) ?? `upstream answered HTTP ${status}`,
      body,
      retryAfterSeconds: Number.isFinite(ra) && ra > 0 ? ra : undefined,
    });
  }

  /** A whole JSON answer: its body parsed, or the upstream's failure (non-2xx, or not JSON) thrown. */
  function answerOf(
    target: UpstreamTarget,
    status: number,
    text: string,
    retryAfter?: string | string[],
  ): JsonResponse {
    if (status < 200 || status >= 300) throw httpFailureOf(target, status, text, retryAfter);
    try {
      return { status, body: text ? JSON.parse(text) : null };
    } catch (err) {
      throw new UpstreamError({ kind: "protocol", message: "upstream sent invalid JSON" }, { cause: err });
    }
  }

  /**
   * GET or POST with a JSON body, read a JSON answer: undici's `dispatch` with a handler of our own rather than
   * `request()`, which wraps every answer in a Readable body stream and an AbortSignal-driven handler (both measured
   * hot in the bench's profile). The caller's signal and the total deadline abort the request through undici's
   * controller; a caller that aborts before a connection was assigned is answered at once.
   */
  function json(
    target: UpstreamTarget,
    method: "GET" | "POST",
    path: string,
    body: unknown,
    signal?: AbortSignal,
  ): Promise<JsonResponse> {
    return new Promise<JsonResponse>((resolve, reject) => {
      let controller: Dispatcher.DispatchController | undefined;
      let abortReason: unknown;
      let settled = false;
      let status = 0;
      let retryAfter: string | string[] | undefined;
      const chunks: Buffer[] = [];
      const abort = (reason: unknown) => {
        if (abortReason === undefined) abortReason = reason;
        controller?.abort(reason as Error);
        // Not connected yet (waiting for a pool slot): the answer is known now; the request aborts when it starts.
        if (!controller) finish(undefined, reason);
      };
      const onAbort = () => abort(signal?.reason ?? new DOMException("aborted", "AbortError"));
      const timer = setTimeout(() => abort(TIMEOUT_REASON), target.timeouts.totalMs);
      const finish = (value: JsonResponse | undefined, err?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        if (err === undefined) resolve(value as JsonResponse);
        else reject(translate(abortReason === TIMEOUT_REASON ? TIMEOUT_REASON : err, "total"));
      };
      if (signal?.aborted) {
        onAbort();
        return;
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      pool(target).dispatch(
        {
          method,
          path: pathOf(target, path),
          headers: headers(target, true),
          body: method === "POST" ? JSON.stringify(body) : undefined,
          headersTimeout: target.timeouts.headersMs,
          bodyTimeout: target.timeouts.idleMs,
        },
        {
          onRequestStart(c) {
            controller = c;
            if (abortReason !== undefined) c.abort(abortReason as Error);
          },
          onResponseStart(_c, statusCode, h) {
            status = statusCode;
            retryAfter = h["retry-after"];
          },
          onResponseData(_c, chunk) {
            chunks.push(chunk);
          },
          onResponseEnd() {
            const text = chunks.length === 1 ? (chunks[0] as Buffer).toString() : Buffer.concat(chunks).toString();
            try {
              finish(answerOf(target, status, text, retryAfter));
            } catch (err) {
              finish(undefined, err);
            }
          },
          onResponseError(_c, err) {
            finish(undefined, err);
          },
        },
      );
    });
  }

  /** POST a multipart form (rare: audio uploads), through `request()`. */
  async function form(target: UpstreamTarget, path: string, body: FormData, signal?: AbortSignal) {
    const d = deadline(target.timeouts.totalMs, signal);
    try {
      const res = await pool(target).request({
        method: "POST",
        path: pathOf(target, path),
        headers: headers(target, true, true),
        body,
        signal: d.signal,
        headersTimeout: target.timeouts.headersMs,
        bodyTimeout: target.timeouts.idleMs,
      });
      return answerOf(target, res.statusCode, await res.body.text(), res.headers["retry-after"]);
    } catch (err) {
      throw translate(d.signal.reason === TIMEOUT_REASON ? TIMEOUT_REASON : err, "total");
    } finally {
      d.clear();
    }
  }

  return {
    postJson: (target, path, body, signal) => json(target, "POST", path, body, signal),
    postForm: (target, path, body, signal) => form(target, path, body, signal),
    getJson: (target, path, signal) => json(target, "GET", path, undefined, signal),

    postStream(target, path, body, signal) {
      return openSseStream({
        dispatch: (handler) =>
          pool(target).dispatch(
            {
              method: "POST",
              path: pathOf(target, path),
              headers: headers(target, false),
              body: JSON.stringify(body),
              headersTimeout: target.timeouts.headersMs,
              // Silences are timed by the stream itself: the first token's limit, then the idle one (see idleMs).
              bodyTimeout: 0,
            },
            handler,
          ),
        signal,
        totalMs: target.timeouts.totalMs,
        firstTokenMs: target.timeouts.firstTokenMs,
        idleMs: target.timeouts.idleMs,
        fail(err, phase, own) {
          if (own) return translate(TIMEOUT_REASON, own);
          if (err instanceof ProtocolEnd) return new UpstreamError({ kind: "protocol", message: err.message });
          return translate(err, phase);
        },
        httpFailure: (status, text, retryAfter) => httpFailureOf(target, status, text, retryAfter),
        errorEvent(data) {
          const parsed = safeJson(redactKey(data, target));
          if (!isErrorEvent(parsed)) return undefined;
          return new UpstreamError({
            kind: "stream_error",
            message: upstreamMessage(parsed) ?? "upstream error",
            body: parsed,
          });
        },
      });
    },

    async close() {
      await Promise.allSettled([...pools.values()].map((p) => p.close()));
      pools.clear();
    },
  };
}

/**
 * An upstream's error text without the provider's API key. Some servers and proxies quote the credentials they
 * were sent ("Incorrect API key provided: …"); the text reaches the caller, who must never see the gateway's key.
 */
function redactKey(text: string, target: UpstreamTarget): string {
  const key = target.apiKey;
  return key && key.length >= 4 && text.includes(key) ? text.split(key).join("[redacted]") : text;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isErrorEvent(v: unknown): boolean {
  if (!v || typeof v !== "object") return false;
  const o = v as Record<string, unknown>;
  return ("error" in o && !("choices" in o)) || o.object === "error";
}

/** The human message of an OpenAI/vLLM/TEI error body, whatever its exact shape. */
export function upstreamMessage(body: unknown): string | undefined {
  if (typeof body === "string") return body.slice(0, 1000) || undefined;
  if (!body || typeof body !== "object") return undefined;
  const o = body as Record<string, unknown>;
  const err = o.error;
  if (err && typeof err === "object" && typeof (err as { message?: unknown }).message === "string") {
    return (err as { message: string }).message;
  }
  if (typeof err === "string") return err;
  if (typeof o.message === "string") return o.message;
  if (typeof o.detail === "string") return o.detail;
  return undefined;
}
