import { Readable } from "node:stream";
import { clone } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ErrorInfoSchema } from "../../gen/passerelle/errors/v1/error_info_pb.js";
import type { DailyUsage, UsageRecord } from "../../gen/passerelle/governance/v1/resources_pb.js";
import { dailyUsageJson, pagedListJson, parseTimeParam, usageRecordJson } from "../mappers/governance.js";
import { InvalidRequest } from "../openai/chat.js";
import { type Clients, callOptions } from "../rpc.js";
import { errorResponses } from "../schemas/common.js";
import {
  adminScopeQuery,
  csvResponse,
  dailyListSchema,
  formatQuery,
  pagedListSchema,
  usageFilterQuery,
  usagePagingQuery,
} from "../schemas/governance.js";

type FilterQuery = { start?: string; end?: string; model?: string; endpoint?: string };
type ScopeQuery = { user_id?: string; organization_id?: string };
type ListQuery = FilterQuery & ScopeQuery & { limit: number; after?: string; format?: "json" | "csv" };

const security = [{ bearer: [] }];

/** The RPC's field names → the query parameters REST callers sent (the bridge-wide table lacks these). */
const REST_NAMES: Readonly<Record<string, string>> = { start_time: "start", end_time: "end" };

/** A ConnectError about `start_time`/`end_time`, retold in terms of `start`/`end`. */
function inRestTerms(err: unknown): unknown {
  if (!(err instanceof ConnectError)) return err;
  const info = err.findDetails(ErrorInfoSchema)[0];
  const name = info ? REST_NAMES[info.param] : undefined;
  if (!info || !name) return err;
  const detail = clone(ErrorInfoSchema, info);
  detail.param = name;
  const message = err.rawMessage.replace(/'(start_time|end_time)'/g, (_m, p: string) => `'${REST_NAMES[p]}'`);
  return new ConnectError(message, err.code, err.metadata, [{ desc: ErrorInfoSchema, value: detail }], err.cause);
}

async function restCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw inRestTerms(err);
  }
}

function filterOf(q: FilterQuery) {
  return {
    startTime: q.start === undefined ? undefined : parseTimeParam(q.start, "start"),
    endTime: q.end === undefined ? undefined : parseTimeParam(q.end, "end"),
    model: q.model ?? "",
    endpoint: q.endpoint ?? "",
  };
}

/** Whose usage an administrator reads: one user, one organization, or (neither given) everyone. */
function scopeOf(q: ScopeQuery) {
  if (q.user_id && q.organization_id) {
    throw new InvalidRequest("Give 'user_id' or 'organization_id', not both.", "organization_id");
  }
  if (q.user_id) return { case: "userId" as const, value: q.user_id };
  if (q.organization_id) return { case: "organizationId" as const, value: q.organization_id };
  return { case: "all" as const, value: true };
}

/**
 * Sends a CSV export as it streams from the RPC. The first chunk is awaited before any header is written, so that
 * a refusal (403, 400) still gets its status and OpenAI's error body; a failure later cuts the download short.
 */
async function sendCsv(reply: FastifyReply, stream: AsyncIterable<{ csv: string }>): Promise<FastifyReply> {
  const it = stream[Symbol.asyncIterator]();
  const first = await restCall(() => it.next());
  async function* chunks() {
    try {
      let next = first;
      while (!next.done) {
        yield Buffer.from(next.value.csv, "utf8");
        next = await it.next();
      }
    } finally {
      await it.return?.();
    }
  }
  return reply
    .header("content-type", "text/csv; charset=utf-8")
    .header("content-disposition", 'attachment; filename="usage.csv"')
    .send(Readable.from(chunks(), { objectMode: false }));
}

/**
 * Usage: the caller's own under `/v1/me/usage`, anyone's under `/v1/admin/usage` (admin; `user_id` or
 * `organization_id`, else everyone). Records page newest first with `limit` and `after=<next_page>`; `/daily`
 * aggregates per UTC day and model; `.csv` (or `?format=csv`) downloads the whole filtered list.
 */
export function usageRoutes(app: FastifyInstance, clients: Clients): void {
  for (const scope of ["me", "admin"] as const) {
    const base = `/v1/${scope}/usage`;
    const tags = [scope === "me" ? "me" : "admin"];
    const whose = scope === "me" ? "the caller's" : "a user's, an organization's or everyone's";
    const scopeQuery = scope === "me" ? {} : adminScopeQuery;

    const exportCsv = async (q: ListQuery, req: FastifyRequest, reply: FastifyReply) => {
      const opts = callOptions(req, reply);
      const filter = filterOf(q);
      const stream =
        scope === "me"
          ? clients.governance.exportMyUsage(filter, opts)
          : clients.governance.exportUsage({ ...filter, scope: scopeOf(q) }, opts);
      return sendCsv(reply, stream);
    };

    app.get<{ Querystring: ListQuery }>(
      base,
      {
        schema: {
          tags,
          security,
          summary: `Lists ${whose} usage records, newest first (format=csv: the whole list as CSV).`,
          querystring: {
            type: "object",
            properties: { ...usagePagingQuery, ...usageFilterQuery, ...scopeQuery, ...formatQuery },
          },
          response: {
            200: {
              description: "The page of records, or with format=csv the CSV download.",
              content: {
                "application/json": { schema: pagedListSchema("UsageRecord", true) },
                ...csvResponse.content,
              },
            },
            ...errorResponses,
          },
        },
      },
      async (req, reply) => {
        const q = req.query;
        if (q.format === "csv") return exportCsv(q, req, reply);
        const page = { ...filterOf(q), pageSize: q.limit, pageToken: q.after ?? "" };
        const opts = callOptions(req, reply);
        const res = await restCall<{ usageRecords: UsageRecord[]; nextPageToken: string }>(() =>
          scope === "me"
            ? clients.governance.listMyUsage(page, opts)
            : clients.governance.listUsage({ ...page, scope: scopeOf(q) }, opts),
        );
        return pagedListJson(res.usageRecords.map(usageRecordJson), res.nextPageToken, (r) => r.id);
      },
    );

    app.get<{ Querystring: ListQuery }>(
      `${base}.csv`,
      {
        schema: {
          tags,
          security,
          summary: `Downloads ${whose} usage records as CSV, newest first.`,
          querystring: { type: "object", properties: { ...usageFilterQuery, ...scopeQuery } },
          response: { 200: csvResponse, ...errorResponses },
        },
      },
      (req, reply) => exportCsv(req.query, req, reply),
    );

    app.get<{ Querystring: ListQuery }>(
      `${base}/daily`,
      {
        schema: {
          tags,
          security,
          summary: `${whose[0]?.toUpperCase()}${whose.slice(1)} usage per UTC day and model, oldest day first.`,
          querystring: { type: "object", properties: { ...usageFilterQuery, ...scopeQuery } },
          response: { 200: dailyListSchema, ...errorResponses },
        },
      },
      async (req, reply) => {
        const q = req.query;
        const filter = filterOf(q);
        const opts = callOptions(req, reply);
        const res = await restCall<{ dailyUsage: DailyUsage[] }>(() =>
          scope === "me"
            ? clients.governance.listMyDailyUsage(filter, opts)
            : clients.governance.listDailyUsage({ ...filter, scope: scopeOf(q) }, opts),
        );
        return { object: "list" as const, data: res.dailyUsage.map(dailyUsageJson), has_more: false };
      },
    );
  }
}
