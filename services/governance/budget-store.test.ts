import os from "node:os";
import { Code, ConnectError } from "@connectrpc/connect";
import { v7 as uuidv7 } from "uuid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/support/db.js";
import { startTcpProxy } from "../../test/support/tcp-proxy.js";
import { usageRecord } from "../../test/support/usage-record.js";
import { type Database, openDatabase } from "../platform/db/database.js";
import { type BudgetStore, createBudgetStore } from "./budget-store.js";
import { governanceEntities, type Owner, type UsageRecord } from "./entities.js";
import { createUsageStore, type UsageStore } from "./usage-store.js";

const user = (): Owner => ({ kind: "user", id: uuidv7() });
const org = (): Owner => ({ kind: "organization", id: uuidv7() });

const record = (over: Partial<UsageRecord> & { userId: string }): UsageRecord => usageRecord(over);

async function code(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    return Code[(err as ConnectError).code];
  }
  throw new Error("expected a rejection");
}

describe("budget store on PostgreSQL", () => {
  let tdb: TestDatabase;
  let db: Database;
  let budgets: BudgetStore;
  let usage: UsageStore;
  const clock = Date.now();

  beforeAll(async () => {
    tdb = await createTestDatabase("gov_budget");
    db = await openDatabase({ url: tdb.url, dataDir: os.tmpdir(), entities: governanceEntities, poolMax: 10 });
    budgets = createBudgetStore(db.pool, { cacheTtlMs: 60_000, now: () => clock });
    usage = createUsageStore(db.pool);
  });
  afterAll(async () => {
    await db?.close();
    await tdb?.drop();
  });

  const reservations = async (usageId: string) => {
    const pool = db.pool;
    const { rows } = await pool.query<{ n: number }>(
      "select count(*)::int as n from budget_reservation where usage_id = $1",
      [usageId],
    );
    return rows[0]?.n;
  };

  it("sets, reads, tops up and deletes budgets; never below what was spent", async () => {
    const u = user();
    expect(await budgets.getBudget(u)).toBeNull();
    const set = await budgets.setBudget(u, 1_000n);
    expect(set).toMatchObject({
      owner: u,
      amountNanos: 1_000n,
      spentNanos: 0n,
      reservedNanos: 0n,
      remainingNanos: 1_000n,
    });
    expect((await budgets.topUp(u, 500n)).amountNanos).toBe(1_500n);
    expect((await budgets.topUp(u, -200n)).remainingNanos).toBe(1_300n);
    await usage.writeBatch([record({ userId: u.id, costNanos: 300n })]);
    expect(await budgets.getBudget(u)).toMatchObject({ spentNanos: 300n, remainingNanos: 1_000n });
    expect(await code(() => budgets.setBudget(u, 299n))).toBe("FailedPrecondition");
    expect(await code(() => budgets.topUp(u, -1_001n))).toBe("FailedPrecondition");
    expect((await budgets.setBudget(u, 300n)).remainingNanos).toBe(0n);
    expect(await code(() => budgets.setBudget(u, -1n))).toBe("InvalidArgument");
    expect(await code(() => budgets.topUp(user(), 1n))).toBe("NotFound");
    expect(await code(() => budgets.getBudget({ kind: "user", id: "nope" }))).toBe("InvalidArgument");
    expect(await code(() => budgets.getBudget({ kind: "team" as "user", id: u.id }))).toBe("InvalidArgument");
    expect(await budgets.deleteBudget(u)).toBe(true);
    expect(await budgets.deleteBudget(u)).toBe(false);
    expect(await budgets.getBudget(u)).toBeNull();
  });

  it("lists budgets of one kind in id order", async () => {
    const orgs = [org(), org(), org()];
    for (const o of orgs) await budgets.setBudget(o, 7n);
    const first = await budgets.listBudgets("organization", { limit: 2 });
    const rest = await budgets.listBudgets("organization", { after: first[1]?.owner.id, limit: 10 });
    const ids = [...first, ...rest].map((b) => b.owner.id);
    expect(ids).toEqual([...ids].sort());
    expect(ids).toEqual(expect.arrayContaining(orgs.map((o) => o.id)));
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("admits owners without a budget, and zero-cost requests, without reserving anything", async () => {
    const u = user();
    const id = uuidv7();
    expect(await budgets.reserve(id, [u, org()], 1_000_000n)).toEqual({ admitted: true, owners: [] });
    const limited = user();
    await budgets.setBudget(limited, 0n);
    expect(await budgets.reserve(uuidv7(), [limited], 0n)).toEqual({ admitted: true, owners: [] });
    expect(await reservations(id)).toBe(0);
  });

  it("says an owner may have a budget until it knows otherwise, and follows admin writes", async () => {
    const u = user();
    const o = org();
    const first = budgets.mayHaveBudget([u]); // never looked up: the lookup itself, which finds none
    expect(first).toBeInstanceOf(Promise);
    expect(await first).toBe(false);
    expect((await budgets.reserve(uuidv7(), [u, o], 10n)).admitted).toBe(true); // the lookup (of o) finds none
    expect(budgets.mayHaveBudget([u])).toBe(false);
    expect(budgets.mayHaveBudget([u, o])).toBe(false);
    await budgets.setBudget(o, 1_000n);
    expect(budgets.mayHaveBudget([u, o])).toBe(true);
    expect(budgets.mayHaveBudget([u])).toBe(false);
    await budgets.deleteBudget(o);
    expect(budgets.mayHaveBudget([u, o])).toBe(false);
  });

  it("keeps owners in use known through a silence longer than its TTL, and sees budgets set meanwhile elsewhere", async () => {
    const ttl = 1_200;
    const silence = () => new Promise((r) => setTimeout(r, 2 * ttl + 100));
    const warm = createBudgetStore(db.pool, { cacheTtlMs: ttl, keepWarmMs: 60_000 });
    const cold = createBudgetStore(db.pool, { cacheTtlMs: ttl });
    const elsewhere = createBudgetStore(db.pool);
    const u = user();
    try {
      for (const store of [warm, cold]) expect(await store.mayHaveBudget([u])).toBe(false);
      await silence();
      await elsewhere.setBudget(u, 1_000n);
      await silence();
      // Known without a lookup on the request's path, and up to date.
      expect(warm.mayHaveBudget([u])).toBe(true);
      // Control: the entry expired, and the request looks it up itself.
      const looked = cold.mayHaveBudget([u]);
      expect(looked).toBeInstanceOf(Promise);
      expect(await looked).toBe(true);
    } finally {
      await elsewhere.deleteBudget(u);
      for (const store of [warm, cold, elsewhere]) await store.close();
    }
  });

  it("says 'may have a budget' when the lookup fails, so that reserve meets the failure and answers it", async () => {
    const proxy = await startTcpProxy(tdb.url);
    const cut = await openDatabase({ url: proxy.url, dataDir: os.tmpdir(), entities: governanceEntities, poolMax: 1 });
    try {
      const store = createBudgetStore(cut.pool);
      await proxy.down();
      expect(await store.mayHaveBudget([user()])).toBe(true);
      await expect(store.reserve(uuidv7(), [user()], 10n)).rejects.toThrow();
    } finally {
      await proxy.up();
      await cut.close();
      await proxy.close();
    }
  });

  it("admits exactly what fits among 200 concurrent reservations", async () => {
    const u = user();
    const cost = 1_234_567n;
    await budgets.setBudget(u, cost * 50n + cost - 1n);
    const results = await Promise.all(Array.from({ length: 200 }, () => budgets.reserve(uuidv7(), [u], cost)));
    const admitted = results.filter((r) => r.admitted);
    expect(admitted).toHaveLength(50);
    for (const r of results) {
      if (!r.admitted) expect(r).toEqual({ admitted: false, owner: u, remainingNanos: cost - 1n });
    }
    const b = await budgets.getBudget(u);
    expect(b).toMatchObject({ reservedNanos: cost * 50n, spentNanos: 0n, remainingNanos: cost - 1n });
  });

  it("reserves on every owner or on none", async () => {
    const u = user();
    const o = org();
    await budgets.setBudget(u, 1_000n);
    await budgets.setBudget(o, 100n);
    const id = uuidv7();
    expect(await budgets.reserve(id, [u, o], 150n)).toEqual({ admitted: false, owner: o, remainingNanos: 100n });
    expect((await budgets.getBudget(u))?.reservedNanos).toBe(0n);
    expect(await reservations(id)).toBe(0);
    const ok = await budgets.reserve(id, [u, o], 60n);
    expect(ok.admitted).toBe(true);
    expect(ok.admitted && ok.owners.map((x) => x.kind).sort()).toEqual(["organization", "user"]);
    expect((await budgets.getBudget(u))?.reservedNanos).toBe(60n);
    expect((await budgets.getBudget(o))?.reservedNanos).toBe(60n);
    await budgets.release(id);
    await budgets.release(id);
    expect((await budgets.getBudget(u))?.reservedNanos).toBe(0n);
    expect((await budgets.getBudget(o))?.reservedNanos).toBe(0n);
  });

  it("treats a budget deleted elsewhere as unlimited", async () => {
    const u = user();
    await budgets.setBudget(u, 10n);
    await db.pool.query("delete from budget where owner_id = $1", [u.id]);
    expect(await budgets.reserve(uuidv7(), [u], 1_000n)).toEqual({ admitted: true, owners: [] });
  });

  it("reconciles to the exact amount after 1,000 mixed requests", async () => {
    const u = user();
    const o = org();
    const worst = 10_000n;
    await budgets.setBudget(u, 4_000_000n);
    await budgets.setBudget(o, 3_000_000n);
    const written: UsageRecord[] = [];
    let refused = 0;
    let seed = 42;
    const rand = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    await Promise.all(
      Array.from({ length: 1000 }, async (_, i) => {
        const id = uuidv7();
        const r = await budgets.reserve(id, [u, o], worst);
        if (!r.admitted) {
          refused++;
          // Refused requests are recorded too (429, no cost).
          written.push(record({ id, userId: u.id, organizationId: o.id, status: 429, costNanos: 0n }));
          return;
        }
        const kind = i % 5;
        const cost = BigInt(Math.floor(rand() * Number(worst)));
        if (kind === 0)
          await budgets.release(id); // failed before any work: released, no record
        else if (kind === 1)
          written.push(record({ id, userId: u.id, organizationId: o.id, status: 502, costNanos: 0n }));
        else if (kind === 2)
          written.push(record({ id, userId: u.id, organizationId: o.id, status: 499, costNanos: cost / 3n }));
        else written.push(record({ id, userId: u.id, organizationId: o.id, costNanos: cost }));
      }),
    );
    // Written in batches, some of them twice (a replay), concurrently with each other.
    const batches = [];
    for (let i = 0; i < written.length; i += 97) batches.push(written.slice(i, i + 97));
    await Promise.all([...batches, ...batches.filter((_, i) => i % 3 === 0)].map((b) => usage.writeBatch(b)));
    const pool = db.pool;
    const { rows } = await pool.query<{ n: number; total: string }>(
      "select count(*)::int as n, coalesce(sum(cost_nanos), 0)::text as total from usage_record where user_id = $1",
      [u.id],
    );
    expect(rows[0]?.n).toBe(written.length);
    const total = BigInt(rows[0]?.total ?? "-1");
    expect(total).toBe(written.reduce((s, r) => s + r.costNanos, 0n));
    expect(refused).toBeGreaterThan(0);
    const ub = await budgets.getBudget(u);
    const ob = await budgets.getBudget(o);
    expect(ub).toMatchObject({ spentNanos: total, reservedNanos: 0n, remainingNanos: 4_000_000n - total });
    expect(ob).toMatchObject({ spentNanos: total, reservedNanos: 0n });
    expect(ob?.spentNanos).toBeLessThanOrEqual(3_000_000n);
    const left = await pool.query("select 1 from budget_reservation where owner_id in ($1, $2)", [u.id, o.id]);
    expect(left.rowCount).toBe(0);
  });

  it("sweeps expired reservations; a late settlement is clamped, never negative", async () => {
    const u = user();
    await budgets.setBudget(u, 1_000n);
    const late = uuidv7();
    expect((await budgets.reserve(late, [u], 600n, 1_000)).admitted).toBe(true);
    const fresh = uuidv7();
    expect((await budgets.reserve(fresh, [u], 300n, 60_000)).admitted).toBe(true);
    expect(await budgets.sweepExpired(clock + 999)).toBe(0);
    const swept = await budgets.sweepExpired(clock + 1_000);
    expect(swept).toBeGreaterThanOrEqual(1);
    expect(await reservations(late)).toBe(0);
    expect(await reservations(fresh)).toBe(1);
    expect(await budgets.getBudget(u)).toMatchObject({ reservedNanos: 300n, remainingNanos: 700n });
    // Someone else takes the room the expired reservation left, then the late request settles: still charged once,
    // while the budget stays within its amount.
    const other = uuidv7();
    expect((await budgets.reserve(other, [u], 700n)).admitted).toBe(true);
    await usage.writeBatch([record({ id: late, userId: u.id, costNanos: 500n })]);
    expect(await budgets.getBudget(u)).toMatchObject({ spentNanos: 500n, reservedNanos: 1_000n, remainingNanos: 0n });
    await usage.writeBatch([record({ id: fresh, userId: u.id, costNanos: 250n })]);
    expect(await budgets.getBudget(u)).toMatchObject({ spentNanos: 750n, reservedNanos: 700n, remainingNanos: 0n });
    await usage.writeBatch([record({ id: other, userId: u.id, costNanos: 700n })]);
    expect(await budgets.getBudget(u)).toMatchObject({ spentNanos: 1_000n, reservedNanos: 0n, remainingNanos: 0n });
    // Usage without any reservation (an owner whose budget appeared mid-request) is charged, up to the amount.
    await budgets.topUp(u, 100n);
    await usage.writeBatch([record({ userId: u.id, costNanos: 5_000n })]);
    expect(await budgets.getBudget(u)).toMatchObject({ amountNanos: 1_100n, spentNanos: 1_100n, remainingNanos: 0n });
    expect((await budgets.reserve(uuidv7(), [u], 1n)).admitted).toBe(false);
  });
});
