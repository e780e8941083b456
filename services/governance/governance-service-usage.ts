import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  ExportMyUsageResponseSchema,
  ExportUsageResponseSchema,
  type GovernanceService,
  ListDailyUsageResponseSchema,
  ListMyDailyUsageResponseSchema,
  ListMyUsageResponseSchema,
  ListUsageResponseSchema,
} from "../../gen/passerelle/governance/v1/governance_service_pb.js";
import { pageSize } from "../platform/paging.js";
import type { GovernanceDeps } from "./governance-deps.js";
import { toDailyUsageMsg, toUsageRecordMsg } from "./governance-service-mappers.js";
import { adminOf, principalOf, usageFilter, usageScope } from "./governance-service-validation.js";
import type { UsageFilter } from "./usage-store.js";

type UsageHandlers = Pick<
  ServiceImpl<typeof GovernanceService>,
  "listMyUsage" | "listMyDailyUsage" | "exportMyUsage" | "listUsage" | "listDailyUsage" | "exportUsage"
>;

/** CSV chunks are cut at line ends once they reach this size (a few dozen records). */
const DEFAULT_CHUNK_CHARS = 16 * 1024;

/**
 * Usage: the "my" RPCs are scoped to the caller's user id from the principal and nothing else in the request; the
 * admin RPCs need the `admin` permission and an explicit scope.
 */
export function createUsageHandlers(deps: GovernanceDeps): UsageHandlers {
  const { usageStore } = deps;
  const chunkChars = deps.exportChunkChars ?? DEFAULT_CHUNK_CHARS;

  async function list(filter: UsageFilter, req: { pageSize: number; pageToken: string }) {
    const size = pageSize(req.pageSize);
    const page = await usageStore.listUsage(filter, size, req.pageToken || undefined);
    return { usageRecords: page.items.map(toUsageRecordMsg), nextPageToken: page.nextPageToken };
  }

  async function daily(filter: UsageFilter) {
    return { dailyUsage: (await usageStore.dailyUsage(filter)).map(toDailyUsageMsg) };
  }

  /** The export in chunks of whole lines; stops reading when the caller goes away. */
  async function* csv(filter: UsageFilter, ctx: HandlerContext): AsyncGenerator<string> {
    let chunk = "";
    for await (const line of usageStore.exportCsv(filter)) {
      if (ctx.signal.aborted) return;
      chunk += line;
      if (chunk.length >= chunkChars) {
        yield chunk;
        chunk = "";
      }
    }
    if (chunk) yield chunk;
  }

  return {
    async listMyUsage(req, ctx) {
      const filter = usageFilter({ userId: principalOf(ctx).userId }, req);
      return create(ListMyUsageResponseSchema, await list(filter, req));
    },

    async listMyDailyUsage(req, ctx) {
      const filter = usageFilter({ userId: principalOf(ctx).userId }, req);
      return create(ListMyDailyUsageResponseSchema, await daily(filter));
    },

    async *exportMyUsage(req, ctx) {
      const filter = usageFilter({ userId: principalOf(ctx).userId }, req);
      for await (const text of csv(filter, ctx)) yield create(ExportMyUsageResponseSchema, { csv: text });
    },

    async listUsage(req, ctx) {
      adminOf(ctx);
      const filter = usageFilter(usageScope(req.scope), req);
      return create(ListUsageResponseSchema, await list(filter, req));
    },

    async listDailyUsage(req, ctx) {
      adminOf(ctx);
      const filter = usageFilter(usageScope(req.scope), req);
      return create(ListDailyUsageResponseSchema, await daily(filter));
    },

    async *exportUsage(req, ctx) {
      adminOf(ctx);
      const filter = usageFilter(usageScope(req.scope), req);
      for await (const text of csv(filter, ctx)) yield create(ExportUsageResponseSchema, { csv: text });
    },
  };
}
