import os from "node:os";
import { Code, ConnectError } from "@connectrpc/connect";
import { v7 as uuidv7 } from "uuid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/support/db.js";
import { usageRecord } from "../../test/support/usage-record.js";
import { type Database, openDatabase } from "../platform/db/database.js";
import { governanceEntities, type UsageRecord } from "./entities.js";
import { createUsageStore, csvLine, type UsageStore } from "./usage-store.js";

const DAY = 86_400_000;
const T0 = Date.parse("2026-03-01T10:00:00.000Z");

const record = (over: Partial<UsageRecord> & { userId: string }): UsageRecord =>
  usageRecord({
    createdAt: new Date(T0),
    costNanos: 1n,
    kwhMin: 0.5,
    kwhMax: 1,
    kgco2Min: 0.25,
    kgco2Max: 0.75,
    ...over,
  });

describe("CSV lines", () => {
  it("quotes what RFC 4180 requires and nothing else", () => {
    expect(csvLine(["a", 1, 2n, null, undefined, ""])).toBe("a,1,2,,,\r\n");
    expect(csvLine(['say "hi"', "a,b", "two\nlines", "cr\rx", " spaced "])).toBe(
      '"say ""hi""","a,b","two\nlines","cr\rx", spaced \r\n',
    );
  });
});

describe("usage store on PostgreSQL", () => {
  let tdb: TestDatabase;
  let db: Database;
  let store: UsageStore;
  const alice = uuidv7();
  const bob = uuidv7();
  const orgA = uuidv7();
  const all: UsageRecord[] = [];

  beforeAll(async () => {
    tdb = await createTestDatabase("gov_usage");
    db = await openDatabase({ url: tdb.url, dataDir: os.tmpdir(), entities: governanceEntities, poolMax: 4 });
    store = createUsageStore(db.pool);
    // Alice: 30 records over 3 days, 2 models, 2 endpoints, 5 failures, pairs sharing a timestamp (ties by id).
    for (let i = 0; i < 30; i++) {
      all.push(
        record({
          userId: alice,
          organizationId: i % 2 === 0 ? orgA : null,
          createdAt: new Date(T0 + Math.floor(i / 10) * DAY + Math.floor(i / 2) * 1000),
          model: i % 3 === 0 ? 'big, "quoted" model' : "small",
          endpoint: i % 4 === 0 ? "embeddings" : "chat.completions",
          status: i % 6 === 5 ? 502 : 200,
          errorCode: i % 6 === 5 ? "upstream_error" : null,
          promptTokens: i,
          completionTokens: 2 * i,
          costNanos: 1_000_000_000n * BigInt(i) + 1n,
          ttftMs: i % 2 ? 12 : null,
          keyId: uuidv7(),
        }),
      );
    }
    for (let i = 0; i < 5; i++) all.push(record({ userId: bob, organizationId: orgA, model: "small" }));
  });
  afterAll(async () => {
    await db?.close();
    await tdb?.drop();
  });

  it("has the schema its entities describe (the migration is complete)", async () => {
    const diff = await (await db.orm()).schema.getUpdateSchemaSQL({ wrap: false, dropTables: false });
    // Other domains' tables are unknown to this ORM (and have hand-written constraints); only ours matter here.
    const ours = diff.split("\n").filter((l) => /"(usage_record|budget|budget_reservation)"/.test(l));
    expect(ours).toEqual([]);
  });

  it("writes a batch once, whatever the replays", async () => {
    expect(await store.writeBatch(all.slice(0, 20))).toBe(20);
    expect(await store.writeBatch(all)).toBe(all.length - 20);
    expect(await store.writeBatch(all)).toBe(0);
    expect(await store.writeBatch([])).toBe(0);
  });

  it("reads records back exactly", async () => {
    const page = await store.listUsage({ scope: { userId: bob } }, 100);
    expect(page.items).toHaveLength(5);
    const original = all.find((r) => r.id === page.items[0]?.id);
    expect(page.items[0]).toEqual(original);
    const alices = await store.listUsage({ scope: { userId: alice } }, 100);
    for (const r of alices.items) expect(r).toEqual(all.find((x) => x.id === r.id));
  });

  it("keeps text and numbers exactly through a batch", async () => {
    // Whatever a batch is encoded as on its way to PostgreSQL (JSON, array literals), the characters that syntax
    // gives meaning to, and extreme doubles, must come back as sent.
    const carol = uuidv7();
    const odd = [
      String.raw`back\slash \"escaped\" {braces}, comma`,
      "NULL",
      "{}",
      "  spaced  ",
      "accents é à ü, 日本語, emoji 🚀",
    ];
    const mine = odd.map((model, i) =>
      record({
        userId: carol,
        model,
        requestId: `req:${i}.${odd.length}-x_y`,
        errorCode: i === 1 ? "NULL" : i === 2 ? String.raw`a\b` : null,
        kwhMin: 1.234e-9 * (i + 1),
        kwhMax: 0.1 + 0.2,
        kgco2Min: 5e-324,
        kgco2Max: Number.MAX_VALUE,
        audioSeconds: i === 0 ? 12.5 : null,
        ttftMs: i,
        costNanos: 1_000_000_000_000_000_007n + BigInt(i),
      }),
    );
    expect(await store.writeBatch(mine)).toBe(mine.length);
    const page = await store.listUsage({ scope: { userId: carol } }, 100);
    expect(page.items).toHaveLength(mine.length);
    for (const r of page.items) expect(r).toEqual(mine.find((x) => x.id === r.id));
  });

  it("pages newest first by (created_at, id), with no gap or repeat", async () => {
    const seen: UsageRecord[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const p = await store.listUsage({ scope: { userId: alice } }, 7, token);
      seen.push(...p.items);
      token = p.nextPageToken || undefined;
      pages++;
    } while (token);
    expect(pages).toBe(5);
    const expected = all
      .filter((r) => r.userId === alice)
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1))
      .map((r) => r.id);
    expect(seen.map((r) => r.id)).toEqual(expected);
  });

  it("filters by time range, model and endpoint, within the scope only", async () => {
    const from = new Date(T0 + DAY);
    const to = new Date(T0 + 2 * DAY);
    const day2 = await store.listUsage({ scope: { userId: alice }, from, to }, 100);
    expect(day2.items.map((r) => r.id).sort()).toEqual(
      all
        .filter((r) => r.userId === alice && r.createdAt >= from && r.createdAt < to)
        .map((r) => r.id)
        .sort(),
    );
    const emb = await store.listUsage({ scope: { userId: alice }, model: "small", endpoint: "embeddings" }, 100);
    expect(emb.items.length).toBe(all.filter((r) => r.model === "small" && r.endpoint === "embeddings").length);
    expect(emb.items.every((r) => r.userId === alice && r.model === "small" && r.endpoint === "embeddings")).toBe(true);
    const org = await store.listUsage({ scope: { organizationId: orgA } }, 100);
    expect(org.items).toHaveLength(15 + 5);
    const everyone = await store.listUsage({ scope: { all: true }, model: "small" }, 100);
    expect(new Set(everyone.items.map((r) => r.userId))).toEqual(new Set([alice, bob]));
    expect((await store.listUsage({ scope: { userId: uuidv7() } }, 100)).items).toEqual([]);
  });

  it("refuses foreign page tokens and malformed scopes", async () => {
    for (const bad of ["nope", Buffer.from('["x","y"]').toString("base64url"), uuidv7()]) {
      const err = await store.listUsage({ scope: { userId: alice } }, 10, bad).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectError);
      expect(Code[(err as ConnectError).code]).toBe("InvalidArgument");
    }
    const err = await store.listUsage({ scope: { userId: "1 or 1=1" } }, 10).catch((e: unknown) => e);
    expect(Code[(err as ConnectError).code]).toBe("InvalidArgument");
    await expect(store.listUsage({ scope: {} as { all: true } }, 10)).rejects.toThrow(TypeError);
  });

  it("aggregates per UTC day and model", async () => {
    const days = await store.dailyUsage({ scope: { userId: alice } });
    const expected = new Map<string, { requests: number; failed: number; prompt: number; cost: bigint }>();
    for (const r of all.filter((x) => x.userId === alice)) {
      const key = `${r.createdAt.toISOString().slice(0, 10)}|${r.model}`;
      const e = expected.get(key) ?? { requests: 0, failed: 0, prompt: 0, cost: 0n };
      e.requests++;
      if (r.status >= 400) e.failed++;
      e.prompt += r.promptTokens;
      e.cost += r.costNanos;
      expected.set(key, e);
    }
    expect(days.map((d) => `${d.day}|${d.model}`)).toEqual([...expected.keys()].sort());
    for (const d of days) {
      const e = expected.get(`${d.day}|${d.model}`);
      expect(d).toMatchObject({ requests: e?.requests, failedRequests: e?.failed, promptTokens: e?.prompt });
      expect(d.completionTokens).toBe(2 * d.promptTokens);
      expect(d.costNanos).toBe(e?.cost);
      expect(d.kwhMin).toBeCloseTo(0.5 * d.requests);
      expect(d.kgco2Max).toBeCloseTo(0.75 * d.requests);
    }
    const one = await store.dailyUsage({ scope: { userId: alice }, model: "small", from: new Date(T0 + 2 * DAY) });
    expect(one.map((d) => d.day)).toEqual(["2026-03-03"]);
  });

  it("exports CSV with a header, quoted fields and exact costs", async () => {
    const lines: string[] = [];
    for await (const line of store.exportCsv({ scope: { userId: alice } }, 4)) lines.push(line);
    expect(lines).toHaveLength(31);
    expect(lines[0]).toBe(
      "id,request_id,created_at,user_id,key_id,organization_id,model,provider_id,endpoint,status,error_code," +
        "prompt_tokens,completion_tokens,kwh_min,kwh_max,kgco2_min,kgco2_max,latency_ms,ttft_ms,audio_seconds,cost\r\n",
    );
    const quoted = lines.find((l) => l.includes("big"));
    expect(quoted).toContain(',"big, ""quoted"" model",');
    const last = all[29] as UsageRecord;
    const line = lines.find((l) => l.startsWith(last.id));
    expect(line?.endsWith(",29.000000001\r\n")).toBe(true);
    expect(line).toContain(`,${last.createdAt.toISOString()},`);
    expect(line).toContain(",502,upstream_error,29,58,0.5,1,0.25,0.75,10,12,,");
  });
});
