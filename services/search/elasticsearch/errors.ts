/**
 * A search engine failure, translated at the adapter (house style: library errors never leave it raw). `retryable`
 * tells the caller whether the same call may succeed later (engine overloaded or unreachable: Unavailable) or never
 * will (a bad request or mapping: Internal). The message names the operation, the HTTP status and Elasticsearch's
 * error type only: Elasticsearch's `reason` may quote field values ("Preview of field's value: …") or query text, so
 * it stays in `cause`, which is never sent to clients and, quoting document text, belongs in debug-level logs only.
 */
export class SearchBackendError extends Error {
  override readonly name = "SearchBackendError";
  readonly retryable: boolean;
  /** The HTTP status Elasticsearch answered with, when it answered. */
  readonly status: number | undefined;

  constructor(message: string, options: { retryable: boolean; status?: number; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.retryable = options.retryable;
    this.status = options.status;
  }
}

/** Statuses worth retrying: timeout, too many requests (rejected execution), bad gateway, unavailable, gateway timeout. */
const RETRYABLE_STATUS = new Set([408, 429, 502, 503, 504]);
export const isRetryableStatus = (status: number | undefined) => status !== undefined && RETRYABLE_STATUS.has(status);

/**
 * The client's errors are recognised by `name`, not `instanceof`: `@elastic/elasticsearch` ships separate ESM and CJS
 * builds, each with its own error classes, and an error may come from the other build (a CJS connection class, such
 * as `@elastic/elasticsearch-mock`'s, under the ESM client). The names are part of the client's documented API.
 */
const isNamed = (err: unknown, ...names: string[]): err is Error => err instanceof Error && names.includes(err.name);

/** What a `ResponseError` carries: Elasticsearch answered, with a status and (usually) a JSON error body. */
function response(err: unknown): { statusCode?: number; body?: unknown } | undefined {
  return isNamed(err, "ResponseError") ? (err as { statusCode?: number; body?: unknown }) : undefined;
}

/** The `error.type` Elasticsearch answered with (`resource_already_exists_exception`, …), if it answered. */
export const elasticsearchErrorType = (err: unknown) => errorType(response(err)?.body);

/** The `error.type` of an Elasticsearch error body, if it has one. */
function errorType(body: unknown): string | undefined {
  if (typeof body !== "object" || body === null || !("error" in body)) return undefined;
  const error = (body as { error: unknown }).error;
  if (typeof error === "object" && error !== null && "type" in error) return String((error as { type: unknown }).type);
  return undefined;
}

/** Translates what the client threw during `operation` (e.g. "search", "bulk index"). */
export function toSearchBackendError(operation: string, err: unknown): SearchBackendError {
  if (err instanceof SearchBackendError) return err;
  const what = `Elasticsearch ${operation} failed`;
  const answered = response(err);
  if (answered) {
    const status = answered.statusCode;
    const type = errorType(answered.body);
    return new SearchBackendError(`${what}: HTTP ${status ?? "?"}${type ? ` (${type})` : ""}`, {
      retryable: isRetryableStatus(status),
      status,
      cause: err,
    });
  }
  // No answer: the node is down, unreachable or too slow; another attempt (or node) may well succeed.
  if (isNamed(err, "ConnectionError", "TimeoutError", "NoLivingConnectionsError"))
    return new SearchBackendError(`${what}: ${err.name}`, { retryable: true, cause: err });
  // Aborted by the caller, (de)serialization, configuration, or a bug of ours: retrying changes nothing.
  const name = err instanceof Error ? err.name : "unknown error";
  return new SearchBackendError(`${what}: ${name}`, { retryable: false, cause: err });
}
