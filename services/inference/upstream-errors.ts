import { Code, type ConnectError } from "@connectrpc/connect";
import { rpcError } from "../platform/errors.js";
import { UpstreamError } from "./upstream-client.js";

/**
 * OpenAI's `param` and `code` in an upstream's error body (`{"error":{…}}` or flat, as vLLM sends it), when they
 * are short identifiers: vLLM's numeric `code` (the HTTP status again) is not one. The code becomes the reason
 * (`context_length_exceeded` → `CONTEXT_LENGTH_EXCEEDED`), which the REST API lower-cases back.
 */
function upstreamErrorFields(body: unknown): { param?: string; code?: string } {
  if (!body || typeof body !== "object") return {};
  const o = body as Record<string, unknown>;
  const err = o.error && typeof o.error === "object" ? (o.error as Record<string, unknown>) : o;
  const ident = (v: unknown) => (typeof v === "string" && /^[A-Za-z0-9_.[\]-]{1,64}$/.test(v) ? v : undefined);
  const code = ident(err.code);
  return { param: ident(err.param), code: code && /^[A-Za-z0-9_]+$/.test(code) ? code.toUpperCase() : undefined };
}

/**
 * The upstream failure as the client should see it. A 4xx keeps its status and message (already stripped of the
 * provider's key by the upstream client), with the field at fault (`param`) and a string `code` the upstream named
 * (OpenAI's `context_length_exceeded`, say). A 401 or 403 is not the caller's fault but the gateway's: the provider
 * refused the gateway's own credentials. Passed through, an OpenAI SDK would report the caller's key as invalid;
 * it is a 503 with a reason of its own instead.
 */
export function toConnectError(e: UpstreamError): ConnectError {
  const f = e.failure;
  switch (f.kind) {
    case "http": {
      if (f.status === 401 || f.status === 403) {
        return rpcError(
          Code.Unavailable,
          "The model's server refused the gateway's credentials; an administrator must check this model's provider.",
          "UPSTREAM_AUTH_FAILED",
          { cause: e },
        );
      }
      if (f.status >= 400 && f.status < 500) {
        const code =
          f.status === 404 ? Code.NotFound : f.status === 429 ? Code.ResourceExhausted : Code.InvalidArgument;
        // Not a 429's: its code speaks of the gateway's own account with the provider (OpenAI's `insufficient_quota`
        // would read as the caller's quota), and the limit is the provider's, not a field of the request.
        const named = f.status === 429 ? {} : upstreamErrorFields(f.body);
        return rpcError(code, f.message, named.code ?? "UPSTREAM_REJECTED", {
          param: named.param,
          upstreamStatus: f.status,
          retryAfterSeconds: f.retryAfterSeconds,
          cause: e,
        });
      }
      return rpcError(Code.Unavailable, `The model's server failed (HTTP ${f.status}).`, "UPSTREAM_ERROR", {
        retryAfterSeconds: f.retryAfterSeconds ?? 1,
        cause: e,
      });
    }
    case "connect":
      return rpcError(Code.Unavailable, "The model is temporarily unreachable.", "UPSTREAM_UNREACHABLE", {
        retryAfterSeconds: 1,
        cause: e,
      });
    case "timeout":
      return rpcError(
        Code.DeadlineExceeded,
        `The model did not answer in time (${f.phase.replace("_", " ")}).`,
        "UPSTREAM_TIMEOUT",
        {
          cause: e,
        },
      );
    case "stream_error":
      return rpcError(Code.Unavailable, `The model failed while generating: ${f.message}`, "UPSTREAM_STREAM_ERROR", {
        cause: e,
      });
    case "aborted":
      return rpcError(Code.Canceled, "The request was cancelled.", "CANCELLED", { cause: e });
    default:
      return rpcError(Code.Unavailable, "The model's server sent an invalid answer.", "UPSTREAM_PROTOCOL_ERROR", {
        cause: e,
      });
  }
}

/**
 * An error event that a 200 stream sent as its first event (vLLM's `data: {"error": {"code": 500, …}}`), as the HTTP
 * error of the status it embeds: nothing reached the client yet, so it is mapped (`toConnectError`), retried on
 * another provider and counted against the provider's health as a non-stream answer of that status would be. An
 * event without a status (a number in `code`, nested or flat) is a server failure: 500. Any other error as it is.
 * After the first chunk, an error event stays a `stream_error`: the client already has part of the answer.
 */
export function beforeFirstChunk(err: unknown): unknown {
  if (!(err instanceof UpstreamError) || err.failure.kind !== "stream_error") return err;
  const { message, body } = err.failure;
  return new UpstreamError({ kind: "http", status: embeddedStatus(body) ?? 500, message, body }, { cause: err });
}

function embeddedStatus(body: unknown): number | undefined {
  if (!body || typeof body !== "object") return undefined;
  const o = body as Record<string, unknown>;
  const err = o.error && typeof o.error === "object" ? (o.error as Record<string, unknown>) : o;
  const code = typeof err.code === "string" && /^\d{3}$/.test(err.code) ? Number(err.code) : err.code;
  return typeof code === "number" && Number.isInteger(code) && code >= 400 && code <= 599 ? code : undefined;
}
