import type pg from "pg";
import { inTransaction } from "../platform/db/transaction.js";
import { invalidArgument } from "../platform/errors.js";
import { isUuid } from "../platform/paging.js";
import type { UsageRecord } from "./entities.js";
import { formatUnits } from "./money.js";
import { settleFresh } from "./settlement.js";

/**
 * The usage ledger in plain SQL: batch writes (with budget settlement in the same transaction), keyset-paged lists,
 * daily aggregates and CSV export. Every read is scoped explicitly: the service passes the caller's user id, or an
 * organization, or `{ all: true }` for admins, so that forgetting a filter cannot list everyone's usage.
 */

export type UsageScope = { userId: string } | { organizationId: string } | { all: true };

export interface UsageFilter {
  scope: UsageScope;
  /** Inclusive. */
  from?: Date;
  /** Exclusive. */
  to?: Date;
  model?: string;
  endpoint?: string;
}

/** One day (UTC) × model of usage. */
export interface DailyUsage {
  /** `YYYY-MM-DD`, UTC. */
  day: string;
  model: string;
  requests: number;
  /** Requests whose status was 400 or above. */
  failedRequests: number;
  promptTokens: number;
  completionTokens: number;
  costNanos: bigint;
  kwhMin: number;
  kwhMax: number;
  kgco2Min: number;
  kgco2Max: number;
}

export type UsageStore = ReturnType<typeof createUsageStore>;

const COLUMNS = [
  "id",
  "request_id",
  "created_at",
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
  "cost_nanos",
  "kwh_min",
  "kwh_max",
  "kgco2_min",
  "kgco2_max",
  "latency_ms",
  "ttft_ms",
  "audio_seconds",
] as const;
type Row = Record<(typeof COLUMNS)[number], unknown>;

const RECORDSET = `id uuid, request_id text, created_at timestamptz, user_id uuid, key_id uuid, organization_id uuid,
  model text, provider_id uuid, endpoint text, status int, error_code text, prompt_tokens int, completion_tokens int,
  cost_nanos bigint, kwh_min float8, kwh_max float8, kgco2_min float8, kgco2_max float8, latency_ms int, ttft_ms int,
  audio_seconds float8`;

/**
 * A batch in one statement: the records ($1, JSON), then the settlement of those that were new ($2 and $3 pair each
 * record's id with the leases it was admitted on; see settleFresh). Returns how many were new.
 */
const WRITE_BATCH = `with fresh as (insert into usage_record (${COLUMNS.join(", ")})
                    select ${COLUMNS.join(", ")} from jsonb_to_recordset($1::jsonb) as j(${RECORDSET})
                    on conflict (id) do nothing
                    returning id, user_id, organization_id, cost_nanos),
  ${settleFresh("$2", "$3")}
select count(*)::int as fresh from fresh`;

function toRow(r: UsageRecord): Row {
  return {
    id: r.id,
    request_id: r.requestId,
    created_at: r.createdAt.toISOString(),
    user_id: r.userId,
    key_id: r.keyId,
    organization_id: r.organizationId,
    model: r.model,
    provider_id: r.providerId,
    endpoint: r.endpoint,
    status: r.status,
    error_code: r.errorCode,
    prompt_tokens: r.promptTokens,
    completion_tokens: r.completionTokens,
    cost_nanos: r.costNanos.toString(),
    kwh_min: r.kwhMin,
    kwh_max: r.kwhMax,
    kgco2_min: r.kgco2Min,
    kgco2_max: r.kgco2Max,
    latency_ms: r.latencyMs,
    ttft_ms: r.ttftMs,
    audio_seconds: r.audioSeconds,
  };
}

const str = (v: unknown) => v as string;
const strOrNull = (v: unknown) => (v == null ? null : (v as string));
const numOrNull = (v: unknown) => (v == null ? null : Number(v));

function fromRow(r: Row): UsageRecord {
  return {
    id: str(r.id),
    requestId: str(r.request_id),
    createdAt: new Date(str(r.created_at)),
    userId: str(r.user_id),
    keyId: strOrNull(r.key_id),
    organizationId: strOrNull(r.organization_id),
    model: str(r.model),
    providerId: strOrNull(r.provider_id),
    endpoint: str(r.endpoint),
    status: Number(r.status),
    errorCode: strOrNull(r.error_code),
    promptTokens: Number(r.prompt_tokens),
    completionTokens: Number(r.completion_tokens),
    costNanos: BigInt(str(r.cost_nanos)),
    kwhMin: Number(r.kwh_min),
    kwhMax: Number(r.kwh_max),
    kgco2Min: Number(r.kgco2_min),
    kgco2Max: Number(r.kgco2_max),
    latencyMs: Number(r.latency_ms),
    ttftMs: numOrNull(r.ttft_ms),
    audioSeconds: numOrNull(r.audio_seconds),
  };
}

/** The SQL conditions of a filter, appending their values to `params`. */
function conditions(f: UsageFilter, params: unknown[]): string[] {
  const bind = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  const out: string[] = [];
  const s = f.scope;
  if ("userId" in s) {
    if (!isUuid(s.userId)) throw invalidArgument("Not a user id.", "user_id");
    out.push(`user_id = ${bind(s.userId)}`);
  } else if ("organizationId" in s) {
    if (!isUuid(s.organizationId)) throw invalidArgument("Not an organization id.", "organization_id");
    out.push(`organization_id = ${bind(s.organizationId)}`);
  } else if (s.all !== true) {
    throw new TypeError("usage queries need an explicit scope");
  }
  if (f.from) out.push(`created_at >= ${bind(f.from)}`);
  if (f.to) out.push(`created_at < ${bind(f.to)}`);
  if (f.model) out.push(`model = ${bind(f.model)}`);
  if (f.endpoint) out.push(`endpoint = ${bind(f.endpoint)}`);
  return out;
}

/** Opaque page token: the exact (created_at, id) of the last row, as PostgreSQL printed the timestamp. */
function encodeToken(createdAt: string, id: string): string {
  return Buffer.from(JSON.stringify([createdAt, id])).toString("base64url");
}

function decodeToken(token: string): [string, string] {
  try {
    const v = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as unknown;
    if (Array.isArray(v) && typeof v[0] === "string" && typeof v[1] === "string" && isUuid(v[1])) {
      if (!Number.isNaN(new Date(v[0]).getTime())) return [v[0], v[1]];
    }
  } catch {
    // fall through
  }
  throw invalidArgument("page_token is not a token this server issued.", "page_token");
}

/** One CSV line (RFC 4180): fields with a comma, a quote or a line break are quoted, quotes doubled; ends in CRLF. */
export function csvLine(fields: readonly (string | number | bigint | null | undefined)[]): string {
  const cells = fields.map((f) => {
    if (f == null) return "";
    const s = String(f);
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  });
  return `${cells.join(",")}\r\n`;
}

const CSV_HEADER = [...COLUMNS.filter((c) => c !== "cost_nanos"), "cost"];

/** The usage ledger over the platform's `pg` pool. */
export function createUsageStore(pool: pg.Pool) {
  async function page(filter: UsageFilter, limit: number, token?: string) {
    const params: unknown[] = [];
    const where = conditions(filter, params);
    if (token) {
      const [createdAt, id] = decodeToken(token);
      params.push(createdAt, id);
      where.push(`(created_at, id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
    }
    params.push(limit + 1);
    const { rows } = await pool.query<Row>(
      `select ${COLUMNS.join(", ")} from usage_record ${where.length ? `where ${where.join(" and ")}` : ""}
        order by created_at desc, id desc limit $${params.length}`,
      params,
    );
    const more = rows.length > limit;
    const items = more ? rows.slice(0, limit) : rows;
    const last = items[items.length - 1];
    return {
      items: items.map(fromRow),
      nextPageToken: more && last ? encodeToken(str(last.created_at), str(last.id)) : "",
    };
  }

  return {
    /**
     * Inserts a batch in one statement and, in the same transaction, settles the budgets of the records that were
     * new. Records already present (a replay) are skipped and settle nothing: writing a batch twice is harmless.
     * Returns how many records were new.
     */
    async writeBatch(records: readonly UsageRecord[]): Promise<number> {
      if (records.length === 0) return 0;
      const leaseUsage: string[] = [];
      const leases: string[] = [];
      for (const r of records) {
        for (const id of r.budgetLeaseIds ?? []) {
          leaseUsage.push(r.id);
          leases.push(id);
        }
      }
      // One statement: the insert, and the settlement of the rows it inserted (only those: a record written again
      // after a failure changes nothing). A batch is three round trips (begin with its timeout, this, commit): each
      // one wakes the event loop and the database, and that fixed cost outweighed the records' own at this size.
      return inTransaction(
        pool,
        async (client) => {
          const { rows } = await client.query<{ fresh: number }>(WRITE_BATCH, [
            JSON.stringify(records.map(toRow)),
            leaseUsage,
            leases,
          ]);
          return rows[0]?.fresh ?? 0;
        },
        "begin; set local statement_timeout = '30s'",
      );
    },

    /** Records newest first, keyset-paged by (created_at, id); `limit` is the page size already clamped. */
    listUsage: (filter: UsageFilter, limit: number, pageToken?: string) => page(filter, limit, pageToken),

    /** Usage per UTC day × model, oldest day first. */
    async dailyUsage(filter: UsageFilter): Promise<DailyUsage[]> {
      const params: unknown[] = [];
      const where = conditions(filter, params);
      const { rows } = await pool.query<Record<string, string | number>>(
        `select to_char(created_at at time zone 'UTC', 'YYYY-MM-DD') as day, model, count(*)::int as requests,
                (count(*) filter (where status >= 400))::int as failed,
                sum(prompt_tokens)::text as prompt_tokens, sum(completion_tokens)::text as completion_tokens,
                sum(cost_nanos)::text as cost_nanos, sum(kwh_min) as kwh_min, sum(kwh_max) as kwh_max,
                sum(kgco2_min) as kgco2_min, sum(kgco2_max) as kgco2_max
           from usage_record ${where.length ? `where ${where.join(" and ")}` : ""}
          group by 1, 2 order by 1, 2`,
        params,
      );
      return rows.map((r) => ({
        day: String(r.day),
        model: String(r.model),
        requests: Number(r.requests),
        failedRequests: Number(r.failed),
        promptTokens: Number(r.prompt_tokens),
        completionTokens: Number(r.completion_tokens),
        costNanos: BigInt(r.cost_nanos ?? 0),
        kwhMin: Number(r.kwh_min),
        kwhMax: Number(r.kwh_max),
        kgco2Min: Number(r.kgco2_min),
        kgco2Max: Number(r.kgco2_max),
      }));
    },

    /**
     * The filtered records as CSV lines (header first, newest first, cost in currency units as an exact decimal),
     * read in keyset pages so that no connection is held between lines.
     */
    async *exportCsv(filter: UsageFilter, pageSize = 1000): AsyncGenerator<string> {
      yield csvLine(CSV_HEADER);
      let token: string | undefined;
      do {
        const p = await page(filter, pageSize, token);
        for (const r of p.items) {
          const row = toRow(r);
          yield csvLine([
            ...CSV_HEADER.slice(0, -1).map((c) => row[c as keyof Row] as string | number | null),
            formatUnits(r.costNanos),
          ]);
        }
        token = p.nextPageToken || undefined;
      } while (token);
    },
  };
}
