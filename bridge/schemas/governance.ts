import { OWNER_KINDS } from "../mappers/governance.js";
import { pagingQuery, unixTime } from "./common.js";

/** JSON schemas of usage and budgets (responses are serialized through them: list every field). */

const UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
const range = {
  type: "object",
  properties: { min: { type: "number" }, max: { type: "number" } },
  required: ["min", "max"],
} as const;
const carbonSchema = {
  type: "object",
  description: "Estimated footprint (EcoLogits method): a range for each quantity.",
  properties: {
    kwh: { ...range, description: "Energy, in kWh." },
    kgco2eq: { ...range, description: "Emissions, in kg CO2 equivalent." },
  },
  required: ["kwh", "kgco2eq"],
} as const;
const cost = { type: "number", description: "Currency units (the currency of the models' prices)." } as const;
const costExact = { type: "string", description: "The same, as an exact decimal string." } as const;
const idOrNull = { type: ["string", "null"] } as const;

export const usageRecordSchema = {
  $id: "UsageRecord",
  type: "object",
  description: "One request on a model-facing endpoint; never any prompt or completion text.",
  properties: {
    object: { type: "string", enum: ["usage_record"] },
    id: { type: "string" },
    request_id: { type: "string", description: "The request's x-request-id (not unique)." },
    created: { ...unixTime, description: "When the request started (Unix seconds)." },
    user_id: { type: "string" },
    key_id: idOrNull,
    organization_id: idOrNull,
    model: { type: "string" },
    provider_id: idOrNull,
    endpoint: { type: "string", description: "chat.completions, embeddings, …" },
    status: { type: "integer", description: "HTTP-like status of the outcome (499: the client went away)." },
    error_code: { type: ["string", "null"] },
    prompt_tokens: { type: "integer" },
    completion_tokens: { type: "integer" },
    total_tokens: { type: "integer" },
    cost,
    cost_exact: costExact,
    carbon: carbonSchema,
    latency_ms: { type: "integer" },
    ttft_ms: { type: ["integer", "null"], description: "Time to first token of a stream." },
    audio_seconds: { type: ["number", "null"] },
  },
  required: [
    "object",
    "id",
    "request_id",
    "created",
    "user_id",
    "key_id",
    "organization_id",
    "model",
    "provider_id",
    "endpoint",
    "status",
    "error_code",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost",
    "cost_exact",
    "carbon",
    "latency_ms",
    "ttft_ms",
    "audio_seconds",
  ],
} as const;

export const dailyUsageSchema = {
  $id: "DailyUsage",
  type: "object",
  description: "The usage of one UTC day on one model.",
  properties: {
    object: { type: "string", enum: ["daily_usage"] },
    day: { type: "string", description: "YYYY-MM-DD (UTC)." },
    model: { type: "string" },
    requests: { type: "integer" },
    failed_requests: { type: "integer", description: "Requests whose status was 400 or above." },
    prompt_tokens: { type: "integer" },
    completion_tokens: { type: "integer" },
    total_tokens: { type: "integer" },
    cost,
    cost_exact: costExact,
    carbon: carbonSchema,
  },
  required: [
    "object",
    "day",
    "model",
    "requests",
    "failed_requests",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost",
    "cost_exact",
    "carbon",
  ],
} as const;

export const budgetSchema = {
  $id: "Budget",
  type: "object",
  description: "Currency units granted to a user or an organization; without a budget, an owner is unlimited.",
  properties: {
    object: { type: "string", enum: ["budget"] },
    owner_kind: { type: "string", enum: OWNER_KINDS },
    owner_id: { type: "string" },
    amount: { type: "number", description: "Granted in total." },
    spent: { type: "number", description: "Spent by settled requests." },
    reserved: { type: "number", description: "Held by requests in flight (their worst-case cost)." },
    remaining: { type: "number", description: "amount − spent − reserved, never below 0." },
    updated: unixTime,
  },
  required: ["object", "owner_kind", "owner_id", "amount", "spent", "reserved", "remaining", "updated"],
} as const;

export const governanceSchemas = [usageRecordSchema, dailyUsageSchema, budgetSchema];

const time = (what: string) =>
  ({
    type: "string",
    maxLength: 40,
    description: `${what}: ISO 8601 date or date-time (UTC without an offset), or Unix seconds.`,
  }) as const;

/** Filters of every usage route. */
export const usageFilterQuery = {
  start: time("Usage at or after this time"),
  end: time("Usage before this time"),
  model: { type: "string", maxLength: 200, description: "Exact public model name." },
  endpoint: { type: "string", maxLength: 40, description: "Exact endpoint, e.g. chat.completions." },
} as const;

export const usagePagingQuery = {
  limit: pagingQuery.limit,
  after: { type: "string", maxLength: 512, description: "Cursor: the `next_page` of the previous page." },
} as const;

export const formatQuery = {
  format: { type: "string", enum: ["json", "csv"], description: "csv: the whole filtered list as a CSV download." },
} as const;

/** Whose usage an administrator reads; neither = everyone's. */
export const adminScopeQuery = {
  user_id: { type: "string", pattern: UUID_PATTERN, description: "Only this user's usage." },
  organization_id: { type: "string", pattern: UUID_PATTERN, description: "Only this organization's usage." },
} as const;

export function pagedListSchema(itemRef: string, withIds: boolean) {
  return {
    type: "object",
    properties: {
      object: { type: "string", enum: ["list"] },
      data: { type: "array", items: { $ref: `${itemRef}#` } },
      ...(withIds ? { first_id: { type: ["string", "null"] }, last_id: { type: ["string", "null"] } } : {}),
      has_more: { type: "boolean" },
      next_page: { type: ["string", "null"], description: "Send as `after` for the next page; null on the last." },
    },
    required: ["object", "data", ...(withIds ? ["first_id", "last_id"] : []), "has_more", "next_page"],
  } as const;
}

export const dailyListSchema = {
  type: "object",
  properties: {
    object: { type: "string", enum: ["list"] },
    data: { type: "array", items: { $ref: "DailyUsage#" } },
    has_more: { type: "boolean", enum: [false] },
  },
  required: ["object", "data", "has_more"],
} as const;

export const myBudgetSchema = {
  type: "object",
  properties: {
    object: { type: "string", enum: ["my_budget"] },
    user: { anyOf: [{ $ref: "Budget#" }, { type: "null" }], description: "The caller's own budget; null = none." },
    organization: {
      anyOf: [{ $ref: "Budget#" }, { type: "null" }],
      description: "The caller's organization's budget; null = no organization or no budget.",
    },
  },
  required: ["object", "user", "organization"],
} as const;

export const budgetParams = {
  type: "object",
  properties: {
    owner_kind: { type: "string", enum: OWNER_KINDS },
    owner_id: { type: "string", maxLength: 64 },
  },
  required: ["owner_kind", "owner_id"],
} as const;

export const budgetListQuery = {
  owner_kind: { type: "string", enum: OWNER_KINDS, description: "Only budgets of this kind of owner." },
} as const;

export const amountBody = {
  type: "object",
  properties: {
    amount: {
      type: "number",
      minimum: 0,
      description: "Currency units, at most 9 decimals.",
    },
  },
  required: ["amount"],
  additionalProperties: false,
} as const;

export const deletedBudgetSchema = {
  type: "object",
  properties: {
    object: { type: "string", enum: ["budget.deleted"] },
    owner_kind: { type: "string", enum: OWNER_KINDS },
    owner_id: { type: "string" },
    deleted: { type: "boolean" },
  },
  required: ["object", "owner_kind", "owner_id", "deleted"],
} as const;

/** The CSV downloads. */
export const csvResponse = {
  description: "CSV (RFC 4180, CRLF), header first, newest record first; costs as exact decimals.",
  content: { "text/csv": { schema: { type: "string" } } },
} as const;
