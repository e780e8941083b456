import { type Timestamp, timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type Budget,
  type CarbonFootprint,
  type DailyUsage,
  OwnerKind,
  type UsageRecord,
} from "../../gen/passerelle/governance/v1/resources_pb.js";
import { InvalidRequest } from "../openai/chat.js";
import { unix } from "./accounts.js";

/** Pure translations between the REST JSON of usage and budgets and the GovernanceService's messages. */

export const OWNER_KINDS = ["user", "organization"] as const;
export type OwnerKindName = (typeof OWNER_KINDS)[number];
const OWNER_KIND: Record<OwnerKindName, OwnerKind> = { user: OwnerKind.USER, organization: OwnerKind.ORGANIZATION };

export function ownerKindToProto(name: OwnerKindName | undefined): OwnerKind {
  return name ? OWNER_KIND[name] : OwnerKind.UNSPECIFIED;
}

function ownerKindName(kind: OwnerKind): OwnerKindName | "unknown" {
  if (kind === OwnerKind.USER) return "user";
  if (kind === OwnerKind.ORGANIZATION) return "organization";
  return "unknown";
}

const UNIX_SECONDS = /^\d{1,12}(\.\d{1,9})?$/;
// A date, or a date-time with optional seconds, fraction and offset (no offset = UTC).
const ISO_8601 = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)(Z|[+-]\d{2}:?\d{2})?)?$/i;

/** A time query parameter: ISO 8601 (`2026-03-01`, `2026-03-01T10:00:00+01:00`) or Unix seconds; 400 otherwise. */
export function parseTimeParam(raw: string, param: string): Timestamp {
  let ms = Number.NaN;
  if (UNIX_SECONDS.test(raw)) {
    ms = Math.round(Number(raw) * 1000);
  } else {
    const m = ISO_8601.exec(raw);
    // Date.parse rolls 2026-02-30 over to March: a date that does not exist is refused instead.
    const midnight = m ? Date.parse(`${m[1]}T00:00:00Z`) : Number.NaN;
    if (m && !Number.isNaN(midnight) && new Date(midnight).toISOString().slice(0, 10) === m[1]) {
      const offset = m[3] ? m[3].toUpperCase().replace(/^([+-]\d{2})(\d{2})$/, "$1:$2") : "Z";
      ms = m[2] ? Date.parse(`${m[1]}T${m[2]}${offset}`) : midnight;
    }
  }
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) {
    throw new InvalidRequest(`'${param}' must be an ISO 8601 date or date-time, or Unix seconds.`, param);
  }
  return timestampFromMs(ms);
}

function carbonJson(c: CarbonFootprint | undefined) {
  return {
    kwh: { min: c?.kwh?.min ?? 0, max: c?.kwh?.max ?? 0 },
    kgco2eq: { min: c?.kgco2eq?.min ?? 0, max: c?.kgco2eq?.max ?? 0 },
  };
}

export function usageRecordJson(r: UsageRecord) {
  return {
    object: "usage_record" as const,
    id: r.id,
    request_id: r.requestId,
    created: unix(r.createTime) ?? 0,
    user_id: r.userId,
    key_id: r.keyId || null,
    organization_id: r.organizationId || null,
    model: r.model,
    provider_id: r.providerId || null,
    endpoint: r.endpoint,
    status: r.status,
    error_code: r.errorCode || null,
    prompt_tokens: r.promptTokens,
    completion_tokens: r.completionTokens,
    total_tokens: r.promptTokens + r.completionTokens,
    cost: r.cost,
    cost_exact: r.costExact,
    carbon: carbonJson(r.carbon),
    latency_ms: r.latencyMs,
    ttft_ms: r.ttftMs ?? null,
    audio_seconds: r.audioSeconds ?? null,
  };
}

export function dailyUsageJson(d: DailyUsage) {
  return {
    object: "daily_usage" as const,
    day: d.day,
    model: d.model,
    requests: Number(d.requests),
    failed_requests: Number(d.failedRequests),
    prompt_tokens: Number(d.promptTokens),
    completion_tokens: Number(d.completionTokens),
    total_tokens: Number(d.promptTokens + d.completionTokens),
    cost: d.cost,
    cost_exact: d.costExact,
    carbon: carbonJson(d.carbon),
  };
}

export function budgetJson(b: Budget) {
  return {
    object: "budget" as const,
    owner_kind: ownerKindName(b.ownerKind),
    owner_id: b.ownerId,
    amount: b.amount,
    spent: b.spent,
    reserved: b.reserved,
    remaining: b.remaining,
    updated: unix(b.updateTime) ?? 0,
  };
}

/**
 * The list envelope of usage records and budgets. Their order is not by id, so the cursor is `next_page` (an
 * opaque token, sent back as `after`) rather than `last_id`; `first_id`/`last_id` are given when items have ids.
 */
export function pagedListJson<T>(data: T[], nextPageToken: string, idOf?: (item: T) => string) {
  const first = data[0];
  const last = data[data.length - 1];
  return {
    object: "list" as const,
    data,
    ...(idOf ? { first_id: first ? idOf(first) : null, last_id: last ? idOf(last) : null } : {}),
    has_more: nextPageToken !== "",
    next_page: nextPageToken || null,
  };
}
