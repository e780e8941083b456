import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema } from "../../gen/passerelle/errors/v1/error_info_pb.js";

/** Builds a ConnectError carrying an ErrorInfo detail (reason, param, retry delay). */
export function rpcError(
  code: Code,
  message: string,
  reason: string,
  opts: { param?: string; retryAfterSeconds?: number; upstreamStatus?: number; cause?: unknown } = {},
): ConnectError {
  const info = create(ErrorInfoSchema, {
    reason,
    param: opts.param ?? "",
    retryAfterSeconds: opts.retryAfterSeconds ?? 0,
    upstreamStatus: opts.upstreamStatus ?? 0,
  });
  return new ConnectError(message, code, undefined, [{ desc: ErrorInfoSchema, value: info }], opts.cause);
}

const upper = (kind: string) => kind.toUpperCase().replace(/[^A-Z0-9]+/g, "_");

export function notFound(kind: string, id: string): ConnectError {
  return rpcError(Code.NotFound, `No ${kind.replace(/_/g, " ")} found with id '${id}'.`, `${upper(kind)}_NOT_FOUND`);
}

export function invalidArgument(message: string, param?: string, reason = "INVALID_ARGUMENT"): ConnectError {
  return rpcError(Code.InvalidArgument, message, reason, { param });
}

export function alreadyExists(message: string, reason: string, param?: string): ConnectError {
  return rpcError(Code.AlreadyExists, message, reason, { param });
}

export function failedPrecondition(message: string, reason: string): ConnectError {
  return rpcError(Code.FailedPrecondition, message, reason);
}

export function permissionDenied(message = "You do not have permission to do this.", reason = "PERMISSION_DENIED") {
  return rpcError(Code.PermissionDenied, message, reason);
}

export function unauthenticated(message: string, reason = "INVALID_API_KEY"): ConnectError {
  return rpcError(Code.Unauthenticated, message, reason);
}

export function resourceExhausted(message: string, reason: string, retryAfterSeconds: number): ConnectError {
  return rpcError(Code.ResourceExhausted, message, reason, { retryAfterSeconds });
}

export function unavailable(
  message: string,
  reason: string,
  opts: { retryAfterSeconds?: number; cause?: unknown } = {},
): ConnectError {
  return rpcError(Code.Unavailable, message, reason, opts);
}

/**
 * PostgreSQL's SQLSTATEs for text it cannot take: a NUL character, which its text types cannot hold (22021, also
 * bytes that are not UTF-8), and a character the database encoding lacks (22P05).
 */
const UNSTORABLE_TEXT = new Set(["22021", "22P05"]);

/** Whether `err` (or one of its causes) is PostgreSQL refusing a text value: the caller's input, not a fault. */
function isUnstorableText(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && UNSTORABLE_TEXT.has(code)) return true;
  }
  return false;
}

/**
 * The error a caller sees for an unexpected failure: Internal, its cause logged, never sent. Two exceptions: an abort
 * (Canceled, as Connect reads one), and PostgreSQL refusing a text value (a NUL in a name, a query, a filter), which
 * is the caller's input: InvalidArgument. Every text field can carry a NUL (JSON allows it), and only the database
 * knows which of them it stores or compares.
 */
export function internal(cause: unknown): ConnectError {
  if (cause instanceof ConnectError) return cause;
  if (cause instanceof Error && cause.name === "AbortError") return ConnectError.from(cause);
  if (isUnstorableText(cause)) {
    return rpcError(
      Code.InvalidArgument,
      "The request contains a NUL character (\\u0000), which cannot be stored or searched; remove it.",
      "INVALID_TEXT",
      { cause },
    );
  }
  return rpcError(Code.Internal, "Internal error.", "INTERNAL", { cause });
}
