// Over 400 lines on purpose: every RPC of the service runs against one database and one seeded ledger per file;
// split by concern into describe blocks.
import os from "node:os";
import { timestampFromDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type CallOptions,
  type Client,
  Code,
  ConnectError,
  createClient,
  createRouterTransport,
  type Interceptor,
} from "@connectrpc/connect";
import { v7 as uuidv7 } from "uuid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/passerelle/errors/v1/error_info_pb.js";
import { GovernanceService } from "../../gen/passerelle/governance/v1/governance_service_pb.js";
import { OwnerKind } from "../../gen/passerelle/governance/v1/resources_pb.js";
import { createTestDatabase, type TestDatabase } from "../../test/support/db.js";
import { usageRecord } from "../../test/support/usage-record.js";
import { kPrincipal, type Principal } from "../platform/context.js";
import { type Database, openDatabase } from "../platform/db/database.js";
import { createBudgetStore } from "./budget-store.js";
import { governanceEntities, type UsageRecord } from "./entities.js";
import { createGovernanceService } from "./governance-service.js";
import { createUsageStore } from "./usage-store.js";

type Governance = Client<typeof GovernanceService>;

const DAY = 86_400_000;
const T0 = Date.parse("2026-03-01T10:00:00.000Z");

const alice = uuidv7();
const bob = uuidv7();
const carol = uuidv7();
const admin = uuidv7();
const orgA = uuidv7();
const ghost = uuidv7();

function principal(userId: string, opts: { admin?: boolean; organizationId?: string } = {}): Principal {
  return {
    userId,
    email: `${userId}@test`,
    name: userId,
    roleId: uuidv7(),
    roleName: opts.admin ? "admin" : "user",
    permissions: new Set(opts.admin ? ["admin"] : []),
    organizationId: opts.organizationId ?? null,
    userExpiresAt: null,
    keyId: uuidv7(),
    keyExpiresAt: null,
  };
}

const PRINCIPALS = new Map([
  [alice, principal(alice, { organizationId: orgA })],
  [bob, principal(bob, { organizationId: orgA })],
  [carol, principal(carol)],
  [admin, principal(admin, { admin: true })],
]);

/** Stands in for the auth interceptor: `x-test-user` names the caller. */
const fakeAuth: Interceptor = (next) => async (req) => {
  const p = PRINCIPALS.get(req.header.get("x-test-user") ?? "");
  if (p) req.contextValues.set(kPrincipal, p);
  return next(req);
};
const as = (userId: string): CallOptions => ({ headers: { "x-test-user": userId } });

const record = (over: Partial<UsageRecord> & { userId: string }): UsageRecord =>
  usageRecord({
    createdAt: new Date(T0),
    model: "small",
    costNanos: 1_500_000_000n,
    kwhMin: 0.5,
    kwhMax: 1,
    kgco2Min: 0.25,
    kgco2Max: 0.75,
    ...over,
  });

async function expectCode(call: Promise<unknown>, code: Code, param?: string): Promise<ConnectError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "expected the call to fail").toBeInstanceOf(ConnectError);
  const ce = err as ConnectError;
  expect(Code[ce.code], ce.message).toBe(Code[code]);
  if (param !== undefined) expect(ce.findDetails(ErrorInfoSchema)[0]?.param, ce.message).toBe(param);
  return ce;
}

async function collect(stream: AsyncIterable<{ csv: string }>): Promise<string[]> {
  const chunks: string[] = [];
  for await (const m of stream) chunks.push(m.csv);
  return chunks;
}

describe("GovernanceService over a router transport", () => {
  let tdb: TestDatabase;
  let db: Database;
  let api: Governance;
  const records: UsageRecord[] = [];
  const known = new Set([alice, bob, carol, admin, orgA]);

  beforeAll(async () => {
    tdb = await createTestDatabase("gov_service");
    db = await openDatabase({ url: tdb.url, dataDir: os.tmpdir(), entities: governanceEntities, poolMax: 4 });
    const usageStore = createUsageStore(db.pool);
    const budgetStore = createBudgetStore(db.pool);
    const service = createGovernanceService({
      usageStore,
      budgetStore,
      ownerExists: async (o) => known.has(o.id),
      exportChunkChars: 600,
    });
    api = createClient(
      GovernanceService,
      createRouterTransport((router) => router.service(GovernanceService, service), {
        router: { interceptors: [fakeAuth] },
      }),
    );
    // Alice: 12 records over 3 days, 2 models, 2 endpoints; Bob: 4 records; both in orgA for half of Alice's.
    for (let i = 0; i < 12; i++) {
      records.push(
        record({
          userId: alice,
          organizationId: i % 2 === 0 ? orgA : null,
          createdAt: new Date(T0 + Math.floor(i / 4) * DAY + i * 1000),
          model: i % 3 === 0 ? "big" : "small",
          endpoint: i % 4 === 0 ? "embeddings" : "chat.completions",
          status: i === 5 ? 502 : 200,
          errorCode: i === 5 ? "upstream_error" : null,
          ttftMs: i % 2 ? 42 : null,
          costNanos: BigInt(i) * 1_000_000n + 1n,
        }),
      );
    }
    for (let i = 0; i < 4; i++) records.push(record({ userId: bob, organizationId: orgA, model: "big" }));
    expect(await usageStore.writeBatch(records)).toBe(16);
  });
  afterAll(async () => {
    await db?.close();
    await tdb?.drop();
  });

  const own = (userId: string) => records.filter((r) => r.userId === userId);

  describe("the caller's usage", () => {
    it("lists only the caller's records, newest first, every field mapped", async () => {
      const res = await api.listMyUsage({ pageSize: 100 }, as(alice));
      expect(res.usageRecords.map((r) => r.id)).toEqual(
        own(alice)
          .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())
          .map((r) => r.id),
      );
      expect(res.nextPageToken).toBe("");
      const failed = res.usageRecords.find((r) => r.status === 502);
      const src = records[5] as UsageRecord;
      expect(failed).toMatchObject({
        id: src.id,
        requestId: "req",
        userId: alice,
        keyId: "",
        organizationId: "",
        model: "small",
        providerId: "",
        endpoint: "chat.completions",
        errorCode: "upstream_error",
        promptTokens: 10,
        completionTokens: 5,
        cost: 0.005000001,
        costExact: "0.005000001",
        carbon: { kwh: { min: 0.5, max: 1 }, kgco2eq: { min: 0.25, max: 0.75 } },
        latencyMs: 10,
        ttftMs: 42,
      });
      expect(failed?.audioSeconds).toBeUndefined();
      expect(failed?.createTime).toEqual(timestampFromDate(src.createdAt));
      const bobs = await api.listMyUsage({}, as(bob));
      expect(bobs.usageRecords.map((r) => r.userId)).toEqual([bob, bob, bob, bob]);
      expect((await api.listMyUsage({}, as(carol))).usageRecords).toEqual([]);
    });

    it("pages with no gap or repeat, and refuses foreign tokens and negative sizes", async () => {
      const seen: string[] = [];
      let pageToken = "";
      let pages = 0;
      do {
        const res = await api.listMyUsage({ pageSize: 5, pageToken }, as(alice));
        seen.push(...res.usageRecords.map((r) => r.id));
        pageToken = res.nextPageToken;
        pages++;
      } while (pageToken);
      expect(pages).toBe(3);
      expect(new Set(seen).size).toBe(12);
      await expectCode(api.listMyUsage({ pageToken: "nope" }, as(alice)), Code.InvalidArgument, "page_token");
      await expectCode(api.listMyUsage({ pageSize: -1 }, as(alice)), Code.InvalidArgument, "page_size");
    });

    it("another user's page token still lists only the caller's records", async () => {
      const first = await api.listMyUsage({ pageSize: 1 }, as(alice));
      const res = await api.listMyUsage({ pageSize: 100, pageToken: first.nextPageToken }, as(bob));
      expect(res.usageRecords.every((r) => r.userId === bob)).toBe(true);
    });

    it("filters by time range, model and endpoint; refuses bad ranges with the field name", async () => {
      const startTime = timestampFromMs(T0 + DAY);
      const endTime = timestampFromMs(T0 + 2 * DAY);
      const day2 = await api.listMyUsage({ pageSize: 100, startTime, endTime }, as(alice));
      expect(day2.usageRecords).toHaveLength(4);
      const big = await api.listMyUsage({ pageSize: 100, model: "big", endpoint: "embeddings" }, as(alice));
      expect(big.usageRecords.map((r) => r.id).sort()).toEqual(
        own(alice)
          .filter((r) => r.model === "big" && r.endpoint === "embeddings")
          .map((r) => r.id)
          .sort(),
      );
      await expectCode(
        api.listMyUsage({ startTime: endTime, endTime: startTime }, as(alice)),
        Code.InvalidArgument,
        "end_time",
      );
      await expectCode(api.listMyUsage({ startTime, endTime: startTime }, as(alice)), Code.InvalidArgument, "end_time");
      await expectCode(
        api.listMyUsage({ startTime: { seconds: 1n, nanos: -1 } }, as(alice)),
        Code.InvalidArgument,
        "start_time",
      );
      await expectCode(
        api.listMyDailyUsage({ endTime: { seconds: 10n ** 15n, nanos: 0 } }, as(alice)),
        Code.InvalidArgument,
        "end_time",
      );
      await expectCode(api.listMyUsage({ model: "x".repeat(201) }, as(alice)), Code.InvalidArgument, "model");
    });

    it("aggregates the caller's usage per day and model", async () => {
      const res = await api.listMyDailyUsage({}, as(alice));
      expect(res.dailyUsage.map((d) => `${d.day} ${d.model}`)).toEqual([
        "2026-03-01 big",
        "2026-03-01 small",
        "2026-03-02 big",
        "2026-03-02 small",
        "2026-03-03 big",
        "2026-03-03 small",
      ]);
      const d = res.dailyUsage[3];
      // Day 2 holds i = 4…7: "big" is i = 6 (i % 3 = 0), "small" i = 4, 5 (failed) and 7.
      expect(d).toMatchObject({ requests: 3n, failedRequests: 1n, promptTokens: 30n, completionTokens: 15n });
      expect(d?.costExact).toBe("0.016000003");
      expect(d?.carbon?.kwh?.max).toBeCloseTo(3);
      const bobs = await api.listMyDailyUsage({}, as(bob));
      expect(bobs.dailyUsage).toHaveLength(1);
      expect(bobs.dailyUsage[0]).toMatchObject({ model: "big", requests: 4n, costExact: "6" });
    });

    it("exports the caller's records as CSV in chunks of whole lines", async () => {
      const chunks = await collect(api.exportMyUsage({}, as(alice)));
      expect(chunks.length).toBeGreaterThan(1);
      for (const c of chunks) expect(c.endsWith("\r\n")).toBe(true);
      const lines = chunks.join("").split("\r\n").slice(0, -1);
      expect(lines[0]?.startsWith("id,request_id,created_at,user_id,")).toBe(true);
      expect(lines).toHaveLength(13);
      expect(lines.slice(1).every((l) => l.split(",")[3] === alice)).toBe(true);
      const filtered = await collect(api.exportMyUsage({ model: "big" }, as(bob)));
      expect(filtered.join("").split("\r\n")).toHaveLength(6);
      await expectCode(
        collect(api.exportMyUsage({ startTime: timestampFromMs(T0), endTime: timestampFromMs(T0) }, as(alice))),
        Code.InvalidArgument,
        "end_time",
      );
    });

    it("needs a principal", async () => {
      await expectCode(api.listMyUsage({}), Code.Unauthenticated);
      await expectCode(api.getMyBudget({}), Code.Unauthenticated);
    });
  });

  describe("admin usage views", () => {
    it("refuses non-admins on every admin RPC, before looking at the input", async () => {
      const calls: Promise<unknown>[] = [
        api.listUsage({ scope: { case: "all", value: true } }, as(alice)),
        api.listUsage({}, as(alice)),
        api.listDailyUsage({ scope: { case: "userId", value: bob } }, as(alice)),
        collect(api.exportUsage({ scope: { case: "all", value: true } }, as(alice))),
        api.getBudget({ ownerKind: OwnerKind.USER, ownerId: alice }, as(alice)),
        api.listBudgets({}, as(alice)),
        api.setBudget({ ownerKind: OwnerKind.USER, ownerId: alice, amount: 1000 }, as(alice)),
        api.topUpBudget({ ownerKind: OwnerKind.USER, ownerId: alice, amount: 1000 }, as(alice)),
        api.deleteBudget({ ownerKind: OwnerKind.USER, ownerId: alice }, as(alice)),
      ];
      for (const call of calls) await expectCode(call, Code.PermissionDenied);
    });

    it("scopes to a user, an organization or everyone, and requires a scope", async () => {
      const ids = async (scope: Parameters<Governance["listUsage"]>[0]["scope"]) =>
        (await api.listUsage({ scope, pageSize: 100 }, as(admin))).usageRecords.map((r) => r.userId);
      expect(new Set(await ids({ case: "userId", value: bob }))).toEqual(new Set([bob]));
      expect(await ids({ case: "organizationId", value: orgA })).toHaveLength(6 + 4);
      expect(await ids({ case: "all", value: true })).toHaveLength(16);
      await expectCode(api.listUsage({}, as(admin)), Code.InvalidArgument, "scope");
      await expectCode(api.listUsage({ scope: { case: "all", value: false } }, as(admin)), Code.InvalidArgument, "all");
      await expectCode(
        api.listUsage({ scope: { case: "userId", value: "x' or 1=1" } }, as(admin)),
        Code.InvalidArgument,
        "user_id",
      );
      await expectCode(
        api.listDailyUsage({ scope: { case: "organizationId", value: "nope" } }, as(admin)),
        Code.InvalidArgument,
        "organization_id",
      );
      const perModel = await api.listDailyUsage({ scope: { case: "all", value: true }, model: "big" }, as(admin));
      expect(perModel.dailyUsage.reduce((n, d) => n + d.requests, 0n)).toBe(8n);
      const csv = await collect(api.exportUsage({ scope: { case: "organizationId", value: orgA } }, as(admin)));
      expect(csv.join("").split("\r\n")).toHaveLength(1 + 10 + 1);
    });
  });

  describe("budgets", () => {
    it("sets, reads, tops up, lists and deletes budgets", async () => {
      const set = await api.setBudget({ ownerKind: OwnerKind.USER, ownerId: carol, amount: 12.5 }, as(admin));
      expect(set.budget).toMatchObject({
        ownerKind: OwnerKind.USER,
        ownerId: carol,
        amount: 12.5,
        spent: 0,
        reserved: 0,
        remaining: 12.5,
      });
      expect(set.budget?.updateTime).toBeDefined();
      const up = await api.topUpBudget({ ownerKind: OwnerKind.USER, ownerId: carol, amount: 0.000000001 }, as(admin));
      expect(up.budget?.amount).toBe(12.500000001);
      const got = await api.getBudget({ ownerKind: OwnerKind.USER, ownerId: carol }, as(admin));
      expect(got.budget?.amount).toBe(12.500000001);
      await api.setBudget({ ownerKind: OwnerKind.ORGANIZATION, ownerId: orgA, amount: 100 }, as(admin));
      await api.setBudget({ ownerKind: OwnerKind.USER, ownerId: bob, amount: 7 }, as(admin));

      const everything: string[] = [];
      let pageToken = "";
      do {
        const res = await api.listBudgets({ pageSize: 1, pageToken }, as(admin));
        everything.push(...res.budgets.map((b) => `${OwnerKind[b.ownerKind]}:${b.ownerId}`));
        pageToken = res.nextPageToken;
      } while (pageToken);
      expect(everything).toEqual([...[bob, carol].sort().map((id) => `USER:${id}`), `ORGANIZATION:${orgA}`]);
      const orgs = await api.listBudgets({ ownerKind: OwnerKind.ORGANIZATION }, as(admin));
      expect(orgs.budgets.map((b) => b.ownerId)).toEqual([orgA]);
      const users = await api.listBudgets({ ownerKind: OwnerKind.USER, pageSize: 1 }, as(admin));
      await expectCode(
        api.listBudgets({ ownerKind: OwnerKind.ORGANIZATION, pageToken: users.nextPageToken }, as(admin)),
        Code.InvalidArgument,
        "page_token",
      );
      await expectCode(api.listBudgets({ pageToken: "user:nope" }, as(admin)), Code.InvalidArgument, "page_token");

      await api.deleteBudget({ ownerKind: OwnerKind.USER, ownerId: bob }, as(admin));
      await expectCode(api.getBudget({ ownerKind: OwnerKind.USER, ownerId: bob }, as(admin)), Code.NotFound);
      await expectCode(api.deleteBudget({ ownerKind: OwnerKind.USER, ownerId: bob }, as(admin)), Code.NotFound);
    });

    it("shows callers their own budget and their organization's", async () => {
      const mine = await api.getMyBudget({}, as(alice));
      expect(mine.userBudget).toBeUndefined();
      expect(mine.organizationBudget).toMatchObject({ ownerKind: OwnerKind.ORGANIZATION, ownerId: orgA, amount: 100 });
      const carols = await api.getMyBudget({}, as(carol));
      expect(carols.userBudget).toMatchObject({ ownerId: carol, amount: 12.500000001 });
      expect(carols.organizationBudget).toBeUndefined();
    });

    it("refuses bad amounts with the field name", async () => {
      for (const amount of [-1, Number.NaN, Number.POSITIVE_INFINITY, 1e-10, 0.1234567891, 2e9]) {
        await expectCode(
          api.setBudget({ ownerKind: OwnerKind.USER, ownerId: carol, amount }, as(admin)),
          Code.InvalidArgument,
          "amount",
        );
        await expectCode(
          api.topUpBudget({ ownerKind: OwnerKind.USER, ownerId: carol, amount }, as(admin)),
          Code.InvalidArgument,
          "amount",
        );
      }
      const fine = await api.setBudget({ ownerKind: OwnerKind.USER, ownerId: carol, amount: 0.1 }, as(admin));
      expect(fine.budget?.amount).toBe(0.1);
    });

    it("answers NotFound for what does not exist and InvalidArgument for malformed owners", async () => {
      await expectCode(api.getBudget({ ownerKind: OwnerKind.USER, ownerId: ghost }, as(admin)), Code.NotFound);
      await expectCode(api.getBudget({ ownerKind: OwnerKind.USER, ownerId: "nope" }, as(admin)), Code.NotFound);
      await expectCode(
        api.topUpBudget({ ownerKind: OwnerKind.ORGANIZATION, ownerId: ghost, amount: 1 }, as(admin)),
        Code.NotFound,
      );
      await expectCode(
        api.setBudget({ ownerKind: OwnerKind.USER, ownerId: ghost, amount: 1 }, as(admin)),
        Code.NotFound,
      );
      await expectCode(
        api.setBudget({ ownerKind: OwnerKind.USER, ownerId: "nope", amount: 1 }, as(admin)),
        Code.InvalidArgument,
        "owner_id",
      );
      await expectCode(
        api.getBudget({ ownerKind: OwnerKind.UNSPECIFIED, ownerId: carol }, as(admin)),
        Code.InvalidArgument,
        "owner_kind",
      );
    });

    it("refuses a budget below what was already spent", async () => {
      await api.setBudget({ ownerKind: OwnerKind.USER, ownerId: admin, amount: 10 }, as(admin));
      await createUsageStore(db.pool).writeBatch([record({ userId: admin, costNanos: 4_000_000_000n })]);
      const b = await api.getBudget({ ownerKind: OwnerKind.USER, ownerId: admin }, as(admin));
      expect(b.budget).toMatchObject({ amount: 10, spent: 4, remaining: 6 });
      await expectCode(
        api.setBudget({ ownerKind: OwnerKind.USER, ownerId: admin, amount: 3 }, as(admin)),
        Code.FailedPrecondition,
      );
      const ok = await api.setBudget({ ownerKind: OwnerKind.USER, ownerId: admin, amount: 4 }, as(admin));
      expect(ok.budget?.remaining).toBe(0);
    });
  });
});
