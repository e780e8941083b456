// Budgets end to end: 1,000 mixed requests (unary, streams, streams the client aborts, upstream failures before and
// after the first byte, embeddings) on priced models, then the budgets must reconcile to the nano-unit with the
// usage ledger; and an exhausted budget refuses with 429 insufficient_quota without ever going below zero.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chatParamsFromJson } from "../../bridge/openai/chat.js";
import { costNanos, formatUnits, parseUnits } from "../../services/governance/money.js";
import { countPromptTokens } from "../../services/inference/token-count.js";
import {
  bounded,
  call,
  createMember,
  createRole,
  eventually,
  type Json,
  type ModelSpec,
  modelId,
  ok,
  streamChat,
  writeModelsFile,
} from "../support/governance.js";
import { validateOpenAI } from "../support/openai-schema.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { type Simulator, startSimulator } from "../upstream/simulator.js";

/** Per 1M tokens: dear enough that a request costs a visible fraction of a unit, odd enough to need every decimal. */
const CHAT_PRICES = { prompt_tokens: 700.123, completion_tokens: 2100.777 };
const EMBED_PRICES = { prompt_tokens: 130.5, completion_tokens: 0 };
const PRICES = {
  costPromptPerMillion: CHAT_PRICES.prompt_tokens,
  costCompletionPerMillion: CHAT_PRICES.completion_tokens,
};
/** As many prompt tokens for the gateway's estimate as for the simulator's count: reservations bound real costs. */
const PROMPT = [{ role: "user", content: "1234567890" }];

/** Minimal RFC 4180 reader (no quoted fields in usage exports of these tests). */
function parseCsv(text: string): Record<string, string>[] {
  const [header, ...rows] = text.trimEnd().split("\r\n");
  const names = (header ?? "").split(",");
  return rows.map((row) => Object.fromEntries(row.split(",").map((v, i) => [names[i], v])));
}

describe("budgets reconcile with the usage ledger", () => {
  let ok200: Simulator;
  let failing: Simulator;
  let midStream: Simulator;
  let t: TestPlatform;
  let dir: string;
  let pool: pg.Pool;
  let role: string;

  /** The ledger's view of a user: record count, exact total cost, and the budget rows. */
  async function ledger(userId: string) {
    const usage = await pool.query<{ n: number; cost: string }>(
      "select count(*)::int as n, coalesce(sum(cost_nanos), 0)::text as cost from usage_record where user_id = $1",
      [userId],
    );
    const held = await pool.query<{ n: number }>(
      "select count(*)::int as n from budget_reservation where owner_id = $1",
      [userId],
    );
    return { records: usage.rows[0]?.n ?? 0, costNanos: BigInt(usage.rows[0]?.cost ?? "0"), held: held.rows[0]?.n };
  }
  async function budgetRow(kind: string, id: string) {
    const { rows } = await pool.query<{ amount: string; spent: string; reserved: string }>(
      "select amount_nanos::text as amount, spent_nanos::text as spent, reserved_nanos::text as reserved " +
        "from budget where owner_kind = $1 and owner_id = $2",
      [kind, id],
    );
    const r = rows[0];
    if (!r) throw new Error(`no budget for ${kind} ${id}`);
    return { amount: BigInt(r.amount), spent: BigInt(r.spent), reserved: BigInt(r.reserved) };
  }
  const units = (nanos: bigint) => Number(nanos) / 1e9;

  beforeAll(async () => {
    ok200 = await startSimulator({ completionTokens: 12, ttftMs: 5, interTokenMs: 3 });
    failing = await startSimulator({ failureRate: 1, failureStatus: 500 });
    midStream = await startSimulator({ completionTokens: 12, midStreamErrorAfter: 3 });
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-budgets-"));
    const chat = (name: string, sim: Simulator): ModelSpec => ({
      name,
      type: "text-generation",
      urls: [sim.url],
      upstreamModel: "sim-chat",
    });
    const file = await writeModelsFile(dir, [
      chat("bud-chat", ok200),
      chat("bud-broken", failing),
      chat("bud-flaky", midStream),
      { name: "bud-embed", type: "text-embeddings-inference", urls: [ok200.url], upstreamModel: "sim-embed" },
    ]);
    // Failing upstreams stay in rotation (no passive ejection): every failure reaches the upstream.
    t = await startTestPlatform({
      // Failing providers stay in rotation: what is measured is their requests' settlement.
      env: {
        PASSERELLE_MODELS_FILE: file,
        PASSERELLE_UPSTREAM_EJECT_AFTER_FAILURES: "1000",
        PASSERELLE_UPSTREAM_EJECT_ERROR_PERCENT: "100",
      },
    });
    pool = t.platform.core.db.pool;
    // Prices through the admin API, as an operator sets them.
    for (const [name, costs] of Object.entries({
      "bud-chat": CHAT_PRICES,
      "bud-broken": CHAT_PRICES,
      "bud-flaky": CHAT_PRICES,
      "bud-embed": EMBED_PRICES,
    })) {
      const id = await modelId(t.httpUrl, t.adminKey, name);
      const model = await ok(t.httpUrl, "PATCH", `/v1/admin/models/${id}`, t.adminKey, { costs });
      expect(model.costs).toEqual(costs);
    }
    role = await createRole(t.httpUrl, t.adminKey, {
      "bud-chat": {},
      "bud-broken": {},
      "bud-flaky": {},
      "bud-embed": {},
    });
  });
  afterAll(async () => {
    await t?.close();
    await Promise.all([ok200, failing, midStream].map((s) => s?.close()));
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it("settles 1,000 mixed requests to the exact amount: spent = Σ record costs, reserved = 0, one record each", async () => {
    const org = await ok(t.httpUrl, "POST", "/v1/admin/organizations", t.adminKey, { name: `bud-org-${Date.now()}` });
    const user = await createMember(t.httpUrl, t.adminKey, role, { organization: org.id });
    const key = user.keys[0] as string;
    await ok(t.httpUrl, "PUT", `/v1/admin/budgets/user/${user.id}`, t.adminKey, { amount: 500 });
    await ok(t.httpUrl, "PUT", `/v1/admin/budgets/organization/${org.id}`, t.adminKey, { amount: 1000.5 });

    const N = 1_000;
    const runId = Date.now().toString(36);
    const statuses: Record<string, number> = {};
    const count = (what: string) => {
      statuses[what] = (statuses[what] ?? 0) + 1;
    };
    const started = Date.now();
    await bounded(N, 16, async (i) => {
      const requestId = `bud-${runId}-${i}`;
      const headers = { "x-request-id": requestId };
      const maxTokens = 8 + (i % 7) * 4;
      const body = { messages: PROMPT, max_tokens: maxTokens };
      switch (i % 10) {
        case 0:
        case 1:
        case 2: {
          const res = await call(t.httpUrl, "POST", "/v1/chat/completions", {
            key,
            headers,
            body: { model: "bud-chat", ...body },
          });
          expect(res.status).toBe(200);
          expect(res.body.usage.cost).toBeGreaterThan(0);
          return count("unary 200");
        }
        case 3:
        case 4: {
          const s = await streamChat(t.httpUrl, key, { model: "bud-chat", ...body }, { requestId });
          expect(s.done).toBe(true);
          return count(`stream ${s.status}`);
        }
        case 5: {
          const s = await streamChat(
            t.httpUrl,
            key,
            { model: "bud-chat", ...body },
            { requestId, abortAfterChunks: 2 },
          );
          expect(s.aborted).toBe(true);
          return count("stream aborted by the client");
        }
        case 6: {
          const res = await call(t.httpUrl, "POST", "/v1/chat/completions", {
            key,
            headers,
            body: { model: "bud-broken", ...body },
          });
          return count(`upstream 500 → ${res.status}`);
        }
        case 7: {
          const s = await streamChat(t.httpUrl, key, { model: "bud-flaky", ...body }, { requestId });
          // 200, then `data: {"error":…}` after 3 tokens: charged for what was generated.
          expect(s.status).toBe(200);
          expect(s.chunks.some((c: Json) => c.error)).toBe(true);
          return count("stream failing after the first byte");
        }
        case 8: {
          const res = await call(t.httpUrl, "POST", "/v1/embeddings", {
            key,
            headers,
            body: { model: "bud-embed", input: Array.from({ length: 1 + (i % 3) }, (_, j) => `text ${i} ${j}`) },
          });
          expect(res.status).toBe(200);
          return count("embeddings 200");
        }
        default: {
          const s = await streamChat(t.httpUrl, key, { model: "bud-broken", ...body }, { requestId });
          return count(`stream to a failing upstream → ${s.status}`);
        }
      }
    });
    const elapsed = Date.now() - started;

    // Everything journaled reaches PostgreSQL (flushed every second); the budgets settle in the same transactions.
    // Requests were admitted on budget leases (budget-leases.ts): an idle lease is given back after a second, and
    // its row is gone once the records it admitted have settled it to zero.
    const heldByOrg = async () =>
      (await pool.query("select 1 from budget_reservation where owner_id = $1", [org.id])).rowCount ?? 0;
    await eventually(
      "1,000 usage records, leases given back",
      async () =>
        (await ledger(user.id)).records >= N && (await ledger(user.id)).held === 0 && (await heldByOrg()) === 0,
      30_000,
    );
    const { records, costNanos, held } = await ledger(user.id);
    expect(records).toBe(N);
    expect(held).toBe(0);
    const ids = await pool.query<{ request_id: string; n: number }>(
      "select request_id, count(*)::int as n from usage_record where user_id = $1 group by request_id",
      [user.id],
    );
    expect(ids.rows).toHaveLength(N);
    expect(ids.rows.every((r) => r.n === 1 && r.request_id.startsWith(`bud-${runId}-`))).toBe(true);

    // The CSV export's exact decimals add up to the same nano-units as the ledger.
    const csv = await fetch(`${t.httpUrl}/v1/admin/usage.csv?user_id=${user.id}`, {
      headers: { authorization: `Bearer ${t.adminKey}` },
    });
    const rows = parseCsv(await csv.text());
    expect(rows).toHaveLength(N);
    const csvNanos = rows.reduce((s, r) => s + parseUnits(r.cost ?? "x"), 0n);
    expect(csvNanos).toBe(costNanos);
    const byStatus: Record<string, number> = {};
    for (const r of rows) byStatus[r.status ?? "?"] = (byStatus[r.status ?? "?"] ?? 0) + 1;
    console.log(
      `budgets: ${N} requests in ${elapsed} ms (${JSON.stringify(statuses)}); records by status ` +
        `${JSON.stringify(byStatus)}; spent ${costNanos} nano-units`,
    );
    expect(byStatus["200"]).toBeGreaterThan(0);
    expect(byStatus["499"]).toBeGreaterThan(0); // aborted by the client, charged for what was generated
    // Upstream failures: before the first byte nothing is charged; after it, what was generated is.
    const failed = rows.filter((r) => Number(r.status) >= 500);
    expect(failed).toHaveLength(300);
    expect(failed.filter((r) => r.completion_tokens === "0").every((r) => r.cost === "0")).toBe(true);
    const midStream = failed.filter((r) => r.model === "bud-flaky");
    expect(midStream).toHaveLength(100);
    expect(midStream.every((r) => Number(r.completion_tokens) > 0 && parseUnits(r.cost ?? "x") > 0n)).toBe(true);

    for (const [kind, id, amount] of [
      ["user", user.id, 500_000_000_000n],
      ["organization", org.id, 1_000_500_000_000n],
    ] as const) {
      expect(await budgetRow(kind, id)).toEqual({ amount, spent: costNanos, reserved: 0n });
      const rest = await ok(t.httpUrl, "GET", `/v1/admin/budgets/${kind}/${id}`, t.adminKey);
      expect(rest).toMatchObject({
        amount: units(amount),
        spent: units(costNanos),
        reserved: 0,
        remaining: units(amount - costNanos),
      });
    }
    const mine = await ok(t.httpUrl, "GET", "/v1/me/budget", key);
    expect(mine.user).toMatchObject({ spent: units(costNanos), reserved: 0 });
    expect(mine.organization).toMatchObject({ spent: units(costNanos), reserved: 0 });
  }, 120_000);

  it("refuses with 429 insufficient_quota once the budget is exhausted, and never goes below zero", async () => {
    const user = await createMember(t.httpUrl, t.adminKey, role);
    const key = user.keys[0] as string;
    const amount = 0.25;
    await ok(t.httpUrl, "PUT", `/v1/admin/budgets/user/${user.id}`, t.adminKey, { amount });
    const body = { model: "bud-chat", messages: PROMPT, max_tokens: 20 };
    const unary = () => call(t.httpUrl, "POST", "/v1/chat/completions", { key, body });
    const streamed = () => streamChat(t.httpUrl, key, body);
    // 30 at once: each reserves its worst case (≈ 0.049), so only what fits in 0.25 is admitted.
    const burst = await Promise.all(Array.from({ length: 30 }, () => unary()));
    const admitted = burst.filter((r) => r.status === 200).length;
    expect(admitted).toBeGreaterThan(0);
    expect(admitted).toBeLessThanOrEqual(5);
    const refused = burst.find((r) => r.status === 429);
    expect(refused).toBeDefined();
    validateOpenAI("ErrorResponse", refused?.body);
    expect(refused?.body.error).toMatchObject({ type: "insufficient_quota", code: "insufficient_quota" });
    expect(refused?.body.error.message).toMatch(/budget is exhausted/);

    // Then one at a time, each settled before the next, until the budget says no.
    let last = 200;
    for (let i = 0; i < 20 && last === 200; i++) {
      await eventually("reservations settled", async () => (await ledger(user.id)).held === 0);
      last = (i % 2 ? await streamed() : await unary()).status;
    }
    expect(last).toBe(429);
    const stream = await streamed();
    expect(stream.status).toBe(429);
    expect(stream.error.error).toMatchObject({ type: "insufficient_quota", code: "insufficient_quota" });

    await eventually("reservations settled", async () => (await ledger(user.id)).held === 0);
    const { costNanos, records } = await ledger(user.id);
    const budget = await budgetRow("user", user.id);
    expect(budget).toEqual({ amount: 250_000_000n, spent: costNanos, reserved: 0n });
    expect(budget.spent).toBeLessThanOrEqual(budget.amount);
    const rest = await ok(t.httpUrl, "GET", `/v1/admin/budgets/user/${user.id}`, t.adminKey);
    expect(rest.remaining).toBeGreaterThanOrEqual(0);
    expect(rest.remaining).toBe(units(budget.amount - costNanos));
    // What is left is less than one more request's worst case.
    expect(rest.remaining).toBeLessThan(10 * 700.123e-6 + 20 * 2100.777e-6);
    // Refusals have their records too (429 insufficient_quota, no cost): more records than admitted requests.
    expect(records).toBeGreaterThan(admitted);
  }, 60_000);

  it("clamps a charge above its reservation at the amount (the upstream counted more): never below zero", async () => {
    const user = await createMember(t.httpUrl, t.adminKey, role);
    const key = user.keys[0] as string;
    // The gateway estimates this prompt at fewer tokens than the simulator counts (the real case: another tokenizer).
    const body = { model: "bud-chat", messages: [{ role: "user", content: "hello world" }], max_tokens: 12 };
    const estimate = countPromptTokens(chatParamsFromJson(body).params);
    const worst = costNanos({ promptTokens: estimate, completionTokens: 12 }, PRICES);
    await ok(t.httpUrl, "PUT", `/v1/admin/budgets/user/${user.id}`, t.adminKey, { amount: Number(formatUnits(worst)) });
    const res = await call(t.httpUrl, "POST", "/v1/chat/completions", { key, body });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const actual = costNanos(
      { promptTokens: res.body.usage.prompt_tokens, completionTokens: res.body.usage.completion_tokens },
      PRICES,
    );
    expect(res.body.usage.prompt_tokens).toBeGreaterThan(estimate);
    expect(actual).toBeGreaterThan(worst);
    await eventually("the record settled", async () => (await ledger(user.id)).records === 1);
    // The record keeps the true cost; the budget is spent to its amount and no further.
    expect((await ledger(user.id)).costNanos).toBe(actual);
    expect(await budgetRow("user", user.id)).toEqual({ amount: worst, spent: worst, reserved: 0n });
    const rest = await ok(t.httpUrl, "GET", `/v1/admin/budgets/user/${user.id}`, t.adminKey);
    expect(rest).toMatchObject({ spent: units(worst), reserved: 0, remaining: 0 });
    const refused = await call(t.httpUrl, "POST", "/v1/chat/completions", { key, body });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe("insufficient_quota");
  });

  it("a rate-limit refusal leaves no budget reservation behind (limits and budget are reserved together)", async () => {
    const limited = await createRole(t.httpUrl, t.adminKey, { "bud-chat": { requests_per_minute: 3 } });
    const user = await createMember(t.httpUrl, t.adminKey, limited);
    await ok(t.httpUrl, "PUT", `/v1/admin/budgets/user/${user.id}`, t.adminKey, { amount: 10 });
    const body = { model: "bud-chat", messages: PROMPT, max_tokens: 20 };
    const burst = await Promise.all(
      Array.from({ length: 8 }, () => call(t.httpUrl, "POST", "/v1/chat/completions", { key: user.keys[0], body })),
    );
    expect(burst.map((r) => r.status).sort()).toEqual([200, 200, 200, 429, 429, 429, 429, 429]);
    for (const r of burst.filter((b) => b.status === 429)) expect(r.body.error.code).toBe("rate_limit_exceeded");
    // 8 records: the 3 answered and the 5 refused (429, no cost); nothing left reserved.
    await eventually("8 records, nothing held", async () => {
      const l = await ledger(user.id);
      return l.records === 8 && l.held === 0;
    });
    const { costNanos } = await ledger(user.id);
    expect(await budgetRow("user", user.id)).toEqual({ amount: 10_000_000_000n, spent: costNanos, reserved: 0n });
  });
});
