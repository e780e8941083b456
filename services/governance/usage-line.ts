import fs from "node:fs";
import { isUuid } from "../platform/paging.js";
import type { UsageRecord } from "./entities.js";

/**
 * One usage record as one line of the usage journal: its validation (what the ledger's columns accept), its JSON
 * encoding and decoding, and the write that appends it to a segment file.
 */

const INT4 = 2_147_483_647;
const INT8 = 9_223_372_036_854_775_807n;

/** Throws a TypeError naming the first field of `r` the ledger would refuse. */
export function validateUsageRecord(r: UsageRecord): void {
  const fail = (field: string) => {
    throw new TypeError(`invalid usage record: ${field}`);
  };
  const uuid = (v: string | null, field: string, nullable: boolean) =>
    (v === null ? !nullable : typeof v !== "string" || !isUuid(v)) && fail(field);
  const text = (v: string | null, max: number, field: string, nullable = false) =>
    (v === null ? !nullable : typeof v !== "string" || v.length === 0 || v.length > max) && fail(field);
  const int = (v: number | null, field: string, nullable = false) =>
    (v === null ? !nullable : !Number.isInteger(v) || v < 0 || v > INT4) && fail(field);
  const real = (v: number | null, field: string, nullable = false) =>
    (v === null ? !nullable : typeof v !== "number" || !Number.isFinite(v) || v < 0) && fail(field);
  uuid(r.id, "id", false);
  uuid(r.userId, "userId", false);
  uuid(r.keyId, "keyId", true);
  uuid(r.organizationId, "organizationId", true);
  uuid(r.providerId, "providerId", true);
  text(r.requestId, 128, "requestId");
  text(r.model, 200, "model");
  text(r.endpoint, 40, "endpoint");
  text(r.errorCode, 100, "errorCode", true);
  if (!(r.createdAt instanceof Date) || Number.isNaN(r.createdAt.getTime())) fail("createdAt");
  if (!Number.isInteger(r.status) || r.status < 0 || r.status > 999) fail("status");
  int(r.promptTokens, "promptTokens");
  int(r.completionTokens, "completionTokens");
  int(r.latencyMs, "latencyMs");
  int(r.ttftMs, "ttftMs", true);
  if (typeof r.costNanos !== "bigint" || r.costNanos < 0n || r.costNanos > INT8) fail("costNanos");
  for (const k of ["kwhMin", "kwhMax", "kgco2Min", "kgco2Max"] as const) real(r[k], k);
  real(r.audioSeconds, "audioSeconds", true);
  const leases = r.budgetLeaseIds;
  if (leases !== undefined && (!Array.isArray(leases) || leases.length > 2 || !leases.every((id) => isUuid(id)))) {
    fail("budgetLeaseIds");
  }
}

/** A record as one line of JSON, without its newline (`writeLine` adds it). */
export function encode(r: UsageRecord): string {
  return JSON.stringify({ ...r, createdAt: r.createdAt.toISOString(), costNanos: r.costNanos.toString() });
}

export function decode(line: string): UsageRecord {
  const o = JSON.parse(line) as UsageRecord & { createdAt: string; costNanos: string };
  const r = { ...o, createdAt: new Date(o.createdAt), costNanos: BigInt(o.costNanos) };
  validateUsageRecord(r);
  return r;
}

/**
 * Where a line is encoded before its write: a record's line is under 2 KiB (its strings are bounded by the ledger's
 * columns). Encoding the JSON straight into it, then the newline, spares each request a concatenated string that the
 * write would flatten into a copy, and a Buffer of its own. Writes are synchronous, so one buffer serves every journal
 * of the process.
 */
const SCRATCH = Buffer.allocUnsafe(16 * 1024);
const NEWLINE = 0x0a;

/** Appends `json` and a newline in one write (several only if the kernel takes part of it). */
export function writeLine(fd: number, json: string): void {
  let buf = SCRATCH;
  let len: number;
  // At most 3 UTF-8 bytes per UTF-16 code unit: when that fits, nothing is cut.
  if (json.length * 3 < SCRATCH.length) {
    len = SCRATCH.write(json, 0, "utf8");
    SCRATCH[len++] = NEWLINE;
  } else {
    buf = Buffer.from(`${json}\n`);
    len = buf.length;
  }
  for (let off = 0; off < len; ) off += fs.writeSync(fd, buf, off, len - off);
}
