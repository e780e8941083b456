import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema } from "../../gen/passerelle/errors/v1/error_info_pb.js";

/** OpenAI's error body: `{"error":{"message","type","param","code"}}`. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export interface HttpError {
  status: number;
  body: OpenAIErrorBody;
  headers: Record<string, string>;
}

/**
 * Connect code → HTTP status and OpenAI error type. Written out here on purpose: Connect's own code→HTTP table is
 * private API. Deviation from Connect: FailedPrecondition is 409 (a conflict with the resource's state, e.g.
 * deleting a role still held by users), not 400.
 */
export const ERROR_TABLE: Readonly<Record<Code, { status: number; type: string }>> = {
  [Code.Canceled]: { status: 499, type: "request_cancelled" },
  [Code.Unknown]: { status: 500, type: "server_error" },
  [Code.InvalidArgument]: { status: 400, type: "invalid_request_error" },
  [Code.DeadlineExceeded]: { status: 504, type: "timeout_error" },
  [Code.NotFound]: { status: 404, type: "invalid_request_error" },
  [Code.AlreadyExists]: { status: 409, type: "conflict_error" },
  [Code.PermissionDenied]: { status: 403, type: "permission_error" },
  [Code.ResourceExhausted]: { status: 429, type: "rate_limit_error" },
  [Code.FailedPrecondition]: { status: 409, type: "conflict_error" },
  [Code.Aborted]: { status: 409, type: "conflict_error" },
  [Code.OutOfRange]: { status: 400, type: "invalid_request_error" },
  [Code.Unimplemented]: { status: 501, type: "not_implemented_error" },
  [Code.Internal]: { status: 500, type: "server_error" },
  [Code.Unavailable]: { status: 503, type: "service_unavailable_error" },
  [Code.DataLoss]: { status: 500, type: "server_error" },
  [Code.Unauthenticated]: { status: 401, type: "invalid_request_error" },
};

/** Codes whose message may carry internals: the client gets a generic text, the logs get the cause. */
const GENERIC = new Set([Code.Unknown, Code.Internal, Code.DataLoss]);
export const GENERIC_MESSAGE = "The server had an error while processing your request.";

/** Reasons that OpenAI clients know by a type of their own. */
const TYPE_BY_REASON: Readonly<Record<string, string>> = { INSUFFICIENT_QUOTA: "insufficient_quota" };

/**
 * Reasons whose HTTP status is more precise than their code's: an upload over the size limit is InvalidArgument
 * for RPC callers, 413 Content Too Large for REST ones (as the reference system and OpenAI's file uploads answer).
 */
export const STATUS_BY_REASON: Readonly<Record<string, number>> = { FILE_TOO_LARGE: 413 };

export function openAIError(
  status: number,
  type: string,
  message: string,
  param?: string | null,
  code?: string | null,
) {
  return { status, body: { error: { message, type, param: param ?? null, code: code ?? null } }, headers: {} };
}

/**
 * RPC field names → the REST API's names for the same input (`after` is sent as `page_token`, `role` as `role_id`,
 * …), so that an error's `param` names the field the REST caller actually sent. A nested path keeps its tail.
 */
export const REST_PARAM: Readonly<Record<string, string>> = {
  page_size: "limit",
  page_token: "after",
  role_id: "role",
  organization_id: "organization",
  user_id: "user",
  expire_time: "expires",
  clear_expire_time: "expires",
  model_id: "model",
  upstream_model: "model_name",
  timeout_seconds: "timeout_s",
  cost_prompt_per_million: "costs.prompt_tokens",
  cost_completion_per_million: "costs.completion_tokens",
};

export function restParam(param: string | null): string | null {
  if (!param) return param;
  const dot = param.indexOf(".");
  const head = dot < 0 ? param : param.slice(0, dot);
  const renamed = REST_PARAM[head];
  return renamed ? renamed + (dot < 0 ? "" : param.slice(dot)) : param;
}

/** The OpenAI rate-limit headers among an RPC's response headers or error metadata (`x-ratelimit-*`). */
export function rateLimitHeadersOf(from: Headers | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  from?.forEach((value, key) => {
    if (key.startsWith("x-ratelimit-")) out[key] = value;
  });
  return out;
}

/** Maps any error thrown by an RPC call to the HTTP response the REST API sends. */
export function fromConnectError(err: unknown): HttpError {
  const ce = ConnectError.from(err);
  // A code outside the table (a hand-built or future one) is treated as Unknown, generic message included.
  const code = ce.code in ERROR_TABLE ? ce.code : Code.Unknown;
  const row = ERROR_TABLE[code];
  const info = ce.findDetails(ErrorInfoSchema)[0];
  const reason = info?.reason ?? "";
  const headers: Record<string, string> = {};
  // An upstream's 4xx passes through with its own status (the message is the upstream's).
  const upstream = info?.upstreamStatus ?? 0;
  const status = STATUS_BY_REASON[reason] ?? (upstream >= 400 && upstream < 500 ? upstream : row.status);
  if (info && info.retryAfterSeconds > 0 && (status === 429 || status === 503)) {
    headers["retry-after"] = String(info.retryAfterSeconds);
  }
  // A rate-limit refusal carries OpenAI's x-ratelimit-* headers in its metadata.
  Object.assign(headers, rateLimitHeadersOf(ce.metadata));
  return {
    status,
    body: {
      error: {
        message: GENERIC.has(code) ? GENERIC_MESSAGE : ce.rawMessage,
        type: TYPE_BY_REASON[reason] ?? row.type,
        param: info?.param ? info.param : null,
        code: reason ? reason.toLowerCase() : null,
      },
    },
    headers,
  };
}
