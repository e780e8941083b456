import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import { ErrorInfoSchema } from "../../gen/passerelle/errors/v1/error_info_pb.js";
import type { Principal } from "../platform/context.js";
import type { UsageRecord } from "./entities.js";
import type { UsageBuffer } from "./usage-buffer.js";

/** One request's usage record, as the governor knows it when the request ends (or is refused). */
export interface JournalEntry {
  usageId: string;
  principal: Principal;
  requestId: string;
  endpoint: string;
  /** The public model name (or, for a request refused before its model was resolved, the name as asked). */
  model: string;
  /** When the request started and ended (epoch ms). */
  started: number;
  ended: number;
  status: number;
  errorCode?: string;
  promptTokens: number;
  completionTokens: number;
  providerId?: string;
  ttftMs?: number;
  audioSeconds?: number;
  /** Nano-units of the currency. */
  cost: bigint;
  carbon: { kWh: { min: number; max: number }; kgCO2eq: { min: number; max: number } };
  /** The budget leases the request was admitted on (see UsageRecord.budgetLeaseIds). */
  budgetLeaseIds?: string[];
}

/** The usage record's `model` column: `varchar(200)`. */
const MODEL_COLUMN_CHARS = 200;

/**
 * A model name as the record may hold it. Names from the registry always fit; a name as a caller asked for it
 * (recorded when the request was refused before resolution) may not: control characters (PostgreSQL text refuses
 * NUL) are dropped and the rest cut to the column's width, so that no caller can write a record the ledger refuses;
 * no name at all is {@link NO_MODEL}.
 */
export function recordableModelName(name: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed.
  const clean = /[\u0000-\u001f\u007f]/.test(name) ? name.replace(/[\u0000-\u001f\u007f]/g, "") : name;
  if (clean.length === 0) return NO_MODEL;
  return clean.length > MODEL_COLUMN_CHARS ? clean.slice(0, MODEL_COLUMN_CHARS) : clean;
}

/** The record's model when the request named none (the column is required): no model's name starts with "(". */
export const NO_MODEL = "(none)";

/** Journals a request's usage record (the journal settles its budget reservation when written to the database). */
export function journal(deps: { buffer: UsageBuffer; logger: Logger }, e: JournalEntry): void {
  const { principal } = e;
  const record: UsageRecord = {
    id: e.usageId,
    requestId: e.requestId,
    createdAt: new Date(e.started),
    userId: principal.userId,
    keyId: principal.keyId || null,
    organizationId: principal.organizationId,
    model: e.model,
    providerId: e.providerId ?? null,
    endpoint: e.endpoint,
    status: e.status,
    errorCode: e.errorCode ?? null,
    promptTokens: e.promptTokens,
    completionTokens: e.completionTokens,
    costNanos: e.cost,
    kwhMin: e.carbon.kWh.min,
    kwhMax: e.carbon.kWh.max,
    kgco2Min: e.carbon.kgCO2eq.min,
    kgco2Max: e.carbon.kgCO2eq.max,
    latencyMs: Math.max(0, Math.round(e.ended - e.started)),
    ttftMs: e.ttftMs === undefined ? null : Math.round(e.ttftMs),
    audioSeconds: e.audioSeconds ?? null,
  };
  if (e.budgetLeaseIds) record.budgetLeaseIds = e.budgetLeaseIds;
  try {
    deps.buffer.record(record);
  } catch (err) {
    // A disk that refuses the journal: the request is served; say so loudly.
    deps.logger.error({ err, usageId: e.usageId }, "usage record could not be journaled");
  }
}

/**
 * The HTTP status recorded for each Connect code: the one the REST bridge answers (bridge/openai/errors.ts; the
 * services cannot import it), 499 for a client that left.
 */
const STATUS: Readonly<Record<Code, number>> = {
  [Code.Canceled]: 499,
  [Code.Unknown]: 500,
  [Code.InvalidArgument]: 400,
  [Code.DeadlineExceeded]: 504,
  [Code.NotFound]: 404,
  [Code.AlreadyExists]: 409,
  [Code.PermissionDenied]: 403,
  [Code.ResourceExhausted]: 429,
  [Code.FailedPrecondition]: 409,
  [Code.Aborted]: 409,
  [Code.OutOfRange]: 400,
  [Code.Unimplemented]: 501,
  [Code.Internal]: 500,
  [Code.Unavailable]: 503,
  [Code.DataLoss]: 500,
  [Code.Unauthenticated]: 401,
};

/** The status recorded for an error that ended a request: an upstream's own 4xx, else its code's status. */
export function statusOf(err: unknown): { status: number; errorCode: string } {
  const ce = ConnectError.from(err);
  const upstream = ce.findDetails(ErrorInfoSchema)[0]?.upstreamStatus ?? 0;
  return {
    status: upstream >= 400 && upstream < 500 ? upstream : (STATUS[ce.code] ?? 500),
    errorCode: Code[ce.code] ?? "Unknown",
  };
}
