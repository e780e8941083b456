// Over 400 lines on purpose: usage and budgets share one platform, one set of users and one seeded ledger per file;
// split by concern into describe blocks.
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Ajv2020 } from "ajv/dist/2020.js";
import { v7 as uuidv7 } from "uuid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GovernanceService } from "../../gen/passerelle/governance/v1/governance_service_pb.js";
import type { UsageRecord } from "../../services/governance/entities.js";
import { createUsageStore } from "../../services/governance/usage-store.js";
import {
  bearer,
  connectCode,
  createOrganization,
  createRole,
  createUser,
  expectOpenAIError,
  type Json,
  type RestResponse,
  rest,
  type TestUser,
} from "../support/accounts.js";
import { validateOpenAI } from "../support/openai-schema.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";

const DAY = 86_400_000;
const HOUR = 3_600_000;
/** 2026-03-01T00:00:00Z. */
const T0 = Date.parse("2026-03-01T00:00:00Z");

/** An error in OpenAI's shape, valid against OpenAI's own ErrorResponse schema, naming `param` when given. */
function expectError(res: RestResponse<Json>, status: number, type: string, param?: string | null): void {
  expectOpenAIError(res, status, type);
  validateOpenAI("ErrorResponse", res.body);
  if (param !== undefined) expect(res.body.error.param, JSON.stringify(res.body)).toBe(param);
}

/** Minimal RFC 4180 reader: our seeded fields hold no quotes, commas or line breaks. */
function parseCsv(text: string): Record<string, string>[] {
  expect(text.endsWith("\r\n")).toBe(true);
  const [header, ...rows] = text.slice(0, -2).split("\r\n");
  const names = (header ?? "").split(",");
  return rows.map((row) => Object.fromEntries(row.split(",").map((v, i) => [names[i], v])));
}

/** Usage records and budgets over REST (and one look over Connect): isolation, filters, paging, CSV, admin views. */
describe("governance over HTTP", () => {
  let t: TestPlatform;
  let ada: TestUser;
  let bob: TestUser;
  let org: Json;
  const seeded: UsageRecord[] = [];
  const asAdmin = (method: string, path: string, body?: unknown) => rest(t, method, path, { key: t.adminKey, body });
  const get = (user: TestUser, path: string) => rest(t, "GET", path, { key: user.key });

  const record = (user: TestUser, over: Partial<UsageRecord>): UsageRecord => ({
    id: uuidv7(),
    requestId: `req-${seeded.length}`,
    createdAt: new Date(T0),
    userId: user.id,
    keyId: user.keyId,
    organizationId: user.user.organization,
    model: "alpha",
    providerId: null,
    endpoint: "chat.completions",
    status: 200,
    errorCode: null,
    promptTokens: 100,
    completionTokens: 50,
    costNanos: 250_000_000n,
    kwhMin: 0.001,
    kwhMax: 0.002,
    kgco2Min: 0.0005,
    kgco2Max: 0.001,
    latencyMs: 120,
    ttftMs: null,
    audioSeconds: null,
    ...over,
  });

  beforeAll(async () => {
    t = await startTestPlatform();
    const role = await createRole(t);
    org = await createOrganization(t);
    ada = await createUser(t, { role: role.id, organization: org.id });
    bob = await createUser(t, { role: role.id });
    // Ada: 8 records over 3 days (3, 3, 2), models alpha/beta, endpoints; Bob: 3 records on day 1.
    for (let i = 0; i < 8; i++) {
      seeded.push(
        record(ada, {
          createdAt: new Date(T0 + Math.floor(i / 3) * DAY + (i % 3) * HOUR),
          model: i % 2 === 0 ? "alpha" : "beta",
          endpoint: i % 3 === 0 ? "embeddings" : "chat.completions",
          status: i === 4 ? 502 : 200,
          errorCode: i === 4 ? "upstream_error" : null,
          costNanos: BigInt(i + 1) * 125_000_000n + 1n,
          ttftMs: i % 2 ? 35 : null,
        }),
      );
    }
    for (let i = 0; i < 3; i++) seeded.push(record(bob, { createdAt: new Date(T0 + 12 * HOUR + i * 1000) }));
    // A real write through the ledger's store, as the usage journal flushes it.
    expect(await createUsageStore(t.platform.core.db.pool).writeBatch(seeded)).toBe(11);
  });
  afterAll(async () => {
    await t?.close();
  });

  const ofUser = (u: TestUser) => seeded.filter((r) => r.userId === u.id);
  const newestFirst = (rs: UsageRecord[]) => [...rs].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());

  describe("the caller's usage", () => {
    it("lists only the caller's records, newest first, in the list envelope", async () => {
      const res = await get(ada, "/v1/me/usage?limit=100");
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const expected = newestFirst(ofUser(ada)).map((r) => r.id);
      expect(res.body).toMatchObject({
        object: "list",
        first_id: expected[0],
        last_id: expected[7],
        has_more: false,
        next_page: null,
      });
      expect(res.body.data.map((r: Json) => r.id)).toEqual(expected);
      const failed = seeded[4] as UsageRecord;
      expect(res.body.data.find((r: Json) => r.id === failed.id)).toEqual({
        object: "usage_record",
        id: failed.id,
        request_id: failed.requestId,
        created: Math.floor(failed.createdAt.getTime() / 1000),
        user_id: ada.id,
        key_id: ada.keyId,
        organization_id: org.id,
        model: "alpha",
        provider_id: null,
        endpoint: "chat.completions",
        status: 502,
        error_code: "upstream_error",
        prompt_tokens: 100,
        completion_tokens: 50,
        total_tokens: 150,
        cost: 0.625000001,
        cost_exact: "0.625000001",
        carbon: { kwh: { min: 0.001, max: 0.002 }, kgco2eq: { min: 0.0005, max: 0.001 } },
        latency_ms: 120,
        ttft_ms: null,
        audio_seconds: null,
      });
      const bobs = await get(bob, "/v1/me/usage");
      expect(bobs.body.data.map((r: Json) => r.user_id)).toEqual([bob.id, bob.id, bob.id]);
    });

    it("pages with limit and after=<next_page>, with no gap or repeat", async () => {
      const ids: string[] = [];
      let after = "";
      const pages: Json[] = [];
      do {
        const res = await get(ada, `/v1/me/usage?limit=3${after ? `&after=${encodeURIComponent(after)}` : ""}`);
        expect(res.status, JSON.stringify(res.body)).toBe(200);
        pages.push(res.body);
        ids.push(...res.body.data.map((r: Json) => r.id));
        after = res.body.next_page ?? "";
      } while (after);
      expect(pages.map((p) => [p.data.length, p.has_more])).toEqual([
        [3, true],
        [3, true],
        [2, false],
      ]);
      expect(ids).toEqual(newestFirst(ofUser(ada)).map((r) => r.id));
      // Bob following Ada's cursor still sees only his own records.
      const cross = await get(bob, `/v1/me/usage?after=${encodeURIComponent(pages[0].next_page)}`);
      expect(cross.body.data.every((r: Json) => r.user_id === bob.id)).toBe(true);
    });

    it("filters by model, endpoint and time (ISO 8601 or Unix seconds; start inclusive, end exclusive)", async () => {
      const ids = async (query: string) => {
        const res = await get(ada, `/v1/me/usage?limit=100&${query}`);
        expect(res.status, `${query}: ${JSON.stringify(res.body)}`).toBe(200);
        return res.body.data.map((r: Json) => r.id).sort();
      };
      const expected = (pred: (r: UsageRecord) => boolean) =>
        ofUser(ada)
          .filter(pred)
          .map((r) => r.id)
          .sort();
      expect(await ids("model=beta")).toEqual(expected((r) => r.model === "beta"));
      expect(await ids("endpoint=embeddings")).toEqual(expected((r) => r.endpoint === "embeddings"));
      expect(await ids("model=alpha&endpoint=embeddings")).toEqual(
        expected((r) => r.model === "alpha" && r.endpoint === "embeddings"),
      );
      const day2 = expected((r) => r.createdAt.getTime() >= T0 + DAY && r.createdAt.getTime() < T0 + 2 * DAY);
      expect(day2).toHaveLength(3);
      expect(await ids("start=2026-03-02&end=2026-03-03")).toEqual(day2);
      expect(await ids(`start=${(T0 + DAY) / 1000}&end=${(T0 + 2 * DAY) / 1000}`)).toEqual(day2);
      expect(await ids("start=2026-03-02T01:00:00%2B01:00&end=2026-03-02T23:00:00Z")).toEqual(day2);
      expect(await ids("start=2026-03-02T00:00:01Z&end=2026-03-03")).toEqual(
        expected((r) => r.createdAt.getTime() > T0 + DAY && r.createdAt.getTime() < T0 + 2 * DAY),
      );
      expect(await ids("model=nothing")).toEqual([]);
    });

    it("answers 400 naming the REST parameter for bad filters and cursors", async () => {
      const cases: Array<[string, string]> = [
        ["start=yesterday", "start"],
        ["end=2026-02-30", "end"],
        ["start=2026-03-02&end=2026-03-01", "end"],
        ["start=2026-03-02&end=2026-03-02", "end"],
        ["after=not-a-token", "after"],
        ["limit=0", "limit"],
        ["limit=101", "limit"],
        ["format=xml", "format"],
      ];
      for (const [query, param] of cases) {
        expectError(await get(ada, `/v1/me/usage?${query}`), 400, "invalid_request_error", param);
      }
      expectError(await get(ada, "/v1/me/usage/daily?end=1&start=2"), 400, "invalid_request_error", "end");
      expectError(await get(ada, "/v1/me/usage.csv?start=soon"), 400, "invalid_request_error", "start");
      const range = await get(ada, "/v1/me/usage?start=2026-03-02&end=2026-03-01");
      expect(range.body.error.message).toBe("'end' must be after 'start'.");
    });

    it("aggregates the caller's usage per UTC day and model", async () => {
      const res = await get(ada, "/v1/me/usage/daily");
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.object).toBe("list");
      expect(res.body.has_more).toBe(false);
      expect(res.body.data.map((d: Json) => `${d.day} ${d.model} ${d.requests}`)).toEqual([
        "2026-03-01 alpha 2",
        "2026-03-01 beta 1",
        "2026-03-02 alpha 1",
        "2026-03-02 beta 2",
        "2026-03-03 alpha 1",
        "2026-03-03 beta 1",
      ]);
      // Day 2: alpha is i = 4 (the failure), beta i = 3 and 5.
      expect(res.body.data[2]).toMatchObject({ requests: 1, failed_requests: 1, cost_exact: "0.625000001" });
      expect(res.body.data[3]).toEqual({
        object: "daily_usage",
        day: "2026-03-02",
        model: "beta",
        requests: 2,
        failed_requests: 0,
        prompt_tokens: 200,
        completion_tokens: 100,
        total_tokens: 300,
        cost: 1.250000002,
        cost_exact: "1.250000002",
        carbon: { kwh: { min: 0.002, max: 0.004 }, kgco2eq: { min: 0.001, max: 0.002 } },
      });
      const filtered = await get(ada, "/v1/me/usage/daily?model=alpha&start=2026-03-02");
      expect(filtered.body.data.map((d: Json) => d.day)).toEqual(["2026-03-02", "2026-03-03"]);
      const bobs = await get(bob, "/v1/me/usage/daily");
      expect(bobs.body.data).toEqual([expect.objectContaining({ day: "2026-03-01", model: "alpha", requests: 3 })]);
    });

    it("exports the caller's records as a CSV download that parses back", async () => {
      for (const path of ["/v1/me/usage.csv", "/v1/me/usage?format=csv&limit=1"]) {
        const res = await fetch(`${t.httpUrl}${path}`, bearer(ada.key));
        expect(res.status, path).toBe(200);
        expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8");
        expect(res.headers.get("content-disposition")).toMatch(/^attachment; filename="usage\.csv"$/);
        expect(res.headers.get("x-request-id")).toBeTruthy();
        const rows = parseCsv(await res.text());
        expect(rows.map((r) => r.id)).toEqual(newestFirst(ofUser(ada)).map((r) => r.id));
        expect(rows.every((r) => r.user_id === ada.id)).toBe(true);
        const failed = rows.find((r) => r.id === seeded[4]?.id);
        expect(failed).toMatchObject({
          model: "alpha",
          status: "502",
          error_code: "upstream_error",
          cost: "0.625000001",
        });
      }
      const filtered = await fetch(`${t.httpUrl}/v1/me/usage.csv?model=alpha&endpoint=embeddings`, bearer(ada.key));
      expect(parseCsv(await filtered.text()).map((r) => r.model)).toEqual(["alpha", "alpha"]);
      const empty = await fetch(`${t.httpUrl}/v1/me/usage.csv?model=nothing`, bearer(bob.key));
      expect(parseCsv(await empty.text())).toEqual([]);
    });

    it("is the same over Connect: the caller's own records, and admin RPCs refused", async () => {
      const client = createClient(
        GovernanceService,
        createConnectTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" }),
      );
      const res = await client.listMyUsage({ pageSize: 100 }, bearer(bob.key));
      expect(res.usageRecords.map((r) => r.userId)).toEqual([bob.id, bob.id, bob.id]);
      let csv = "";
      for await (const chunk of client.exportMyUsage({}, bearer(bob.key))) csv += chunk.csv;
      expect(parseCsv(csv)).toHaveLength(3);
      expect(await connectCode(client.listUsage({ scope: { case: "all", value: true } }, bearer(bob.key)))).toBe(
        Code.PermissionDenied,
      );
    });
  });

  describe("admin usage views", () => {
    it("refuse non-admins with 403, CSV included", async () => {
      for (const path of [
        "/v1/admin/usage",
        `/v1/admin/usage?user_id=${ada.id}`,
        "/v1/admin/usage/daily",
        "/v1/admin/usage.csv",
        "/v1/admin/usage?format=csv",
        "/v1/admin/budgets",
        `/v1/admin/budgets/user/${ada.id}`,
      ]) {
        expectError(await get(ada, path), 403, "permission_error");
      }
    });

    it("show everyone's usage, or one user's, one organization's, one model's", async () => {
      const ids = async (query: string) => {
        const res = await asAdmin("GET", `/v1/admin/usage?limit=100&${query}`);
        expect(res.status, `${query}: ${JSON.stringify(res.body)}`).toBe(200);
        return res.body.data.map((r: Json) => r.user_id);
      };
      expect(await ids("")).toHaveLength(11);
      expect(new Set(await ids(`user_id=${bob.id}`))).toEqual(new Set([bob.id]));
      expect(await ids(`user_id=${bob.id}`)).toHaveLength(3);
      expect(await ids(`organization_id=${org.id}`)).toEqual(ofUser(ada).map(() => ada.id));
      expect(await ids("model=alpha")).toHaveLength(4 + 3);
      expect(await ids(`user_id=${uuidv7()}`)).toEqual([]);

      const daily = await asAdmin("GET", "/v1/admin/usage/daily?model=alpha");
      expect(daily.body.data.map((d: Json) => `${d.day} ${d.requests}`)).toEqual([
        "2026-03-01 5",
        "2026-03-02 1",
        "2026-03-03 1",
      ]);
      const csv = await fetch(`${t.httpUrl}/v1/admin/usage.csv?user_id=${ada.id}&model=beta`, bearer(t.adminKey));
      expect(csv.headers.get("content-type")).toBe("text/csv; charset=utf-8");
      expect(parseCsv(await csv.text()).map((r) => r.user_id)).toEqual([ada.id, ada.id, ada.id, ada.id]);
    });

    it("answer 400 for malformed or conflicting scopes", async () => {
      expectError(await asAdmin("GET", "/v1/admin/usage?user_id=nope"), 400, "invalid_request_error", "user_id");
      expectError(
        await asAdmin("GET", `/v1/admin/usage?user_id=${ada.id}&organization_id=${org.id}`),
        400,
        "invalid_request_error",
        "organization_id",
      );
    });
  });

  it("answers what /openapi.json documents", async () => {
    const doc = (await (await fetch(`${t.httpUrl}/openapi.json`)).json()) as Record<string, unknown>;
    const ajv = new Ajv2020({ strict: false, allowUnionTypes: true });
    ajv.addSchema({ ...doc, $id: "https://passerelle.local/openapi.json" });
    const check = async (user: TestUser, path: string) => {
      const res = await get(user, path);
      expect(res.status, path).toBe(200);
      const pointer = `/paths/${(path.split("?")[0] ?? "").replace(/\//g, "~1")}/get/responses/200/content/application~1json/schema`;
      const validate = ajv.getSchema(`https://passerelle.local/openapi.json#${pointer}`);
      expect(validate, pointer).toBeDefined();
      expect(validate?.(res.body), `${path}: ${JSON.stringify(validate?.errors)}`).toBe(true);
    };
    await check(ada, "/v1/me/usage?limit=2");
    await check(ada, "/v1/me/usage/daily");
    await check(ada, "/v1/me/budget");
    await check({ ...ada, key: t.adminKey }, "/v1/admin/usage");
    await check({ ...ada, key: t.adminKey }, "/v1/admin/usage/daily");
    await check({ ...ada, key: t.adminKey }, "/v1/admin/budgets");
  });

  describe("budgets", () => {
    const budgetPath = (kind: string, id: string) => `/v1/admin/budgets/${kind}/${id}`;

    it("are absent at first: the caller is unlimited", async () => {
      const res = await get(ada, "/v1/me/budget");
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ object: "my_budget", user: null, organization: null });
    });

    it("are set, topped up, read, listed and deleted by admins", async () => {
      const set = await asAdmin("PUT", budgetPath("user", ada.id), { amount: 10.5 });
      expect(set.status, JSON.stringify(set.body)).toBe(200);
      expect(set.body).toEqual({
        object: "budget",
        owner_kind: "user",
        owner_id: ada.id,
        amount: 10.5,
        spent: 0,
        reserved: 0,
        remaining: 10.5,
        updated: expect.any(Number),
      });
      const up = await asAdmin("POST", `${budgetPath("user", ada.id)}/top-up`, { amount: 2.000000001 });
      expect(up.status, JSON.stringify(up.body)).toBe(200);
      expect(up.body).toMatchObject({ amount: 12.500000001, remaining: 12.500000001 });
      expect((await asAdmin("GET", budgetPath("user", ada.id))).body.amount).toBe(12.500000001);
      const orgBudget = await asAdmin("PUT", budgetPath("organization", org.id), { amount: 1000 });
      expect(orgBudget.body).toMatchObject({ owner_kind: "organization", owner_id: org.id, amount: 1000 });

      const mine = await get(ada, "/v1/me/budget");
      expect(mine.body).toMatchObject({
        object: "my_budget",
        user: { owner_id: ada.id, amount: 12.500000001 },
        organization: { owner_id: org.id, amount: 1000 },
      });
      expect((await get(bob, "/v1/me/budget")).body).toEqual({ object: "my_budget", user: null, organization: null });

      const all = await asAdmin("GET", "/v1/admin/budgets");
      expect(all.body).toMatchObject({ object: "list", has_more: false, next_page: null });
      expect(all.body.data.map((b: Json) => `${b.owner_kind}:${b.owner_id}`)).toEqual([
        `user:${ada.id}`,
        `organization:${org.id}`,
      ]);
      const first = await asAdmin("GET", "/v1/admin/budgets?limit=1");
      expect(first.body).toMatchObject({ has_more: true, data: [{ owner_id: ada.id }] });
      const second = await asAdmin(
        "GET",
        `/v1/admin/budgets?limit=1&after=${encodeURIComponent(first.body.next_page)}`,
      );
      expect(second.body).toMatchObject({ has_more: false, data: [{ owner_id: org.id }] });
      const orgs = await asAdmin("GET", "/v1/admin/budgets?owner_kind=organization");
      expect(orgs.body.data.map((b: Json) => b.owner_id)).toEqual([org.id]);

      const deleted = await asAdmin("DELETE", budgetPath("organization", org.id));
      expect(deleted.status).toBe(200);
      expect(deleted.body).toEqual({
        object: "budget.deleted",
        owner_kind: "organization",
        owner_id: org.id,
        deleted: true,
      });
      expectError(await asAdmin("GET", budgetPath("organization", org.id)), 404, "invalid_request_error");
      expectError(await asAdmin("DELETE", budgetPath("organization", org.id)), 404, "invalid_request_error");
    });

    it("answer 400 naming `amount` for bad amounts", async () => {
      const bodies: unknown[] = [
        { amount: -1 },
        { amount: 0.0000000001 },
        { amount: 1.1234567891 },
        { amount: 2e9 },
        { amount: "10" },
        {},
      ];
      for (const body of bodies) {
        expectError(await asAdmin("PUT", budgetPath("user", ada.id), body), 400, "invalid_request_error", "amount");
        expectError(
          await asAdmin("POST", `${budgetPath("user", ada.id)}/top-up`, body),
          400,
          "invalid_request_error",
          "amount",
        );
      }
      expectError(
        await asAdmin("PUT", budgetPath("user", ada.id), { amount: 1, extra: true }),
        400,
        "invalid_request_error",
        "extra",
      );
      expectError(await asAdmin("GET", budgetPath("team", ada.id)), 400, "invalid_request_error", "owner_kind");
      expectError(await asAdmin("PUT", budgetPath("user", "nope"), { amount: 1 }), 400, "invalid_request_error");
    });

    it("answer 404 for budgets and owners that do not exist", async () => {
      const ghost = uuidv7();
      expectError(await asAdmin("GET", budgetPath("user", ghost)), 404, "invalid_request_error");
      expectError(await asAdmin("GET", budgetPath("user", "nope")), 404, "invalid_request_error");
      expectError(
        await asAdmin("POST", `${budgetPath("user", bob.id)}/top-up`, { amount: 1 }),
        404,
        "invalid_request_error",
      );
      expectError(await asAdmin("DELETE", budgetPath("user", ghost)), 404, "invalid_request_error");
      // Setting a budget for a user or organization that does not exist.
      expectError(await asAdmin("PUT", budgetPath("user", ghost), { amount: 1 }), 404, "invalid_request_error");
      expectError(await asAdmin("PUT", budgetPath("organization", ghost), { amount: 1 }), 404, "invalid_request_error");
    });

    it("settle recorded usage, and refuse (409) to go below what was spent", async () => {
      expect((await asAdmin("PUT", budgetPath("user", bob.id), { amount: 5 })).status).toBe(200);
      const r = record(bob, { createdAt: new Date(T0 + 3 * DAY), costNanos: 2_000_000_000n });
      expect(await createUsageStore(t.platform.core.db.pool).writeBatch([r])).toBe(1);
      const after = await get(bob, "/v1/me/budget");
      expect(after.body.user).toMatchObject({ amount: 5, spent: 2, reserved: 0, remaining: 3 });
      expectError(await asAdmin("PUT", budgetPath("user", bob.id), { amount: 1 }), 409, "conflict_error");
      expect((await asAdmin("PUT", budgetPath("user", bob.id), { amount: 2 })).body.remaining).toBe(0);
    });
  });
});
