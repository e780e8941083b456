import { type IncomingMessage, type ServerResponse, STATUS_CODES } from "node:http";
import type { ErrorShape } from "./types.js";

/** Response writing and vLLM's error bodies. */

export function sendJson(res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/**
 * vLLM's `type` for a status: the names `create_error_response` uses for the statuses it produces itself, else
 * the HTTP reason phrase (what its `HTTPException` handler writes, e.g. "Service Unavailable").
 */
export function vllmErrorType(status: number): string {
  switch (status) {
    case 400:
      return "BadRequestError";
    case 404:
      return "NotFoundError";
    case 500:
      return "InternalServerError";
    case 501:
      return "NotImplementedError";
    default:
      return STATUS_CODES[status] ?? "Error";
  }
}

/** vLLM's error body (see `ErrorShape`): `code` is the HTTP status as an integer, unlike OpenAI's string codes. */
export function vllmErrorBody(
  shape: ErrorShape,
  status: number,
  message: string,
  param: string | null = null,
  type = vllmErrorType(status),
): Record<string, unknown> {
  if (shape === "legacy") return { object: "error", message, type, param, code: status };
  return { error: { message, type, param, code: status } };
}

export function sendVllmError(
  res: ServerResponse,
  shape: ErrorShape,
  status: number,
  message: string,
  param: string | null = null,
  type?: string,
): void {
  sendJson(res, status, vllmErrorBody(shape, status, message, param, type));
}

/** Thrown by request validation; turned into a vLLM error response. */
export class SimulatorHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly type?: string,
  ) {
    super(message);
  }
}

/** vLLM's `RequestValidationError` answer: 400 with the HTTP phrase as `type`. */
export function badRequest(message: string, param: string | null = null): SimulatorHttpError {
  return new SimulatorHttpError(400, message, param, "Bad Request");
}

/** The request body parsed as JSON; vLLM requires `content-type: application/json` on its POST routes. */
export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const mediaType = (req.headers["content-type"] ?? "").split(";", 1)[0]?.trim().toLowerCase();
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    req.on("data", (c: Buffer) => chunks.push(c));
    req.once("end", resolve);
    // a client gone while sending: parse what came, fail, and let the caller see its abort
    req.once("close", resolve);
    req.once("error", reject);
  });
  if (mediaType !== "application/json") {
    throw badRequest("Unsupported Media Type: Only 'application/json' is allowed");
  }
  const text = Buffer.concat(chunks).toString("utf8");
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw badRequest(`JSON decode error: ${(err as Error).message}`);
  }
}

export const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** An optional integer field: undefined/null when absent, else an integer or a 400. */
export function optionalInt(body: Record<string, unknown>, key: string): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v)) throw badRequest(`${key}: Input should be a valid integer`, key);
  return v;
}
