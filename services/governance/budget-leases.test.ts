import os from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { v7 as uuidv7 } from "uuid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/support/db.js";
import { usageRecord } from "../../test/support/usage-record.js";
import { type Database, openDatabase } from "../platform/db/database.js";
import { type BudgetStore, createBudgetStore } from "./budget-store.js";
import { governanceEntities, type Owner, type UsageRecord } from "./entities.js";
import { createUsageStore, type UsageStore } from "./usage-store.js";

// Budget leases (budget-leases.ts) against real PostgreSQL: requests admitted in memory on a slice of the budget,
// settled by their usage records, and the budget reconciled to the nano-unit when the leases are given back.

const user = (): Owner => ({ kind: "user", id: uuidv7() });

const record = (userId: string, costNanos: bigint, budgetLeaseIds?: string[]): UsageRecord =>
  usageRecord({ userId, costNanos, ...(budgetLeaseIds ? { budgetLeaseIds } : {}) });

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await sleep(20);
  }
}

describe("budget leases on PostgreSQL", () => {
  let tdb: TestDatabase;
  let db: Database;
  let usage: UsageStore;
  const stores: BudgetStore[] = [];
  const open = (leases = { idleMs: 100 }) => {
    const s = createBudgetStore(db.pool, { cacheTtlMs: 60_000, leases });
    stores.push(s);
    return s;
  };

  beforeAll(async () => {
    tdb = await createTestDatabase("gov_leases");
    db = await openDatabase({ url: tdb.url, dataDir: os.tmpdir(), entities: governanceEntities, poolMax: 10 });
    usage = createUsageStore(db.pool);
  });
  afterAll(async () => {
    for (const s of stores) await s.close();
    await db?.close();
    await tdb?.drop();
  });

  const rows = async (owner: Owner) => {
    const pool = db.pool;
    const { rows: r } = await pool.query<{ n: number; amount: string }>(
      "select count(*)::int as n, coalesce(sum(amount_nanos), 0)::text as amount from budget_reservation where owner_id = $1",
      [owner.id],
    );
    return { n: r[0]?.n ?? 0, amount: BigInt(r[0]?.amount ?? "0") };
  };

  it("admits in memory once leased: no row per request; the records settle it to the exact amount", async () => {
    const budgets = open();
    const owner = user();
    const amount = 64_000_000n;
    await budgets.setBudget(owner, amount);
    const worst = 1_000n;
    // The first request reserves exactly (a row of its own) and takes no lease (an occasional caller)…
    const firstId = uuidv7();
    const first = await budgets.reserve(firstId, [owner], worst);
    expect(first).toMatchObject({ admitted: true });
    expect(first.admitted && first.lease).toBeUndefined();
    await sleep(150);
    expect(budgets.leasesHeld()).toEqual([]);
    // …nor does one that comes after a pause; the second within the idle time starts a lease.
    const secondId = uuidv7();
    const second = await budgets.reserve(secondId, [owner], worst);
    expect(second.admitted && second.lease).toBeUndefined();
    const thirdId = uuidv7();
    const third = await budgets.reserve(thirdId, [owner], worst);
    expect(third.admitted && third.lease).toBeUndefined();
    await until("a lease", async () => budgets.leasesHeld().length === 1);
    // 1/32 of what remains, before or after the third request's own reservation (the two run at once).
    expect([(amount - 2n * worst) / 32n, (amount - 3n * worst) / 32n]).toContain(budgets.leasesHeld()[0]?.granted);

    const records: UsageRecord[] = [];
    for (let i = 0; i < 300; i++) {
      const r = await budgets.reserve(uuidv7(), [owner], worst);
      if (!r.admitted || !r.lease) throw new Error(`request ${i} was not admitted on the lease`);
      const cost = BigInt(i % 7) * 100n; // 0 … 600, below the worst case; some cost nothing
      r.lease.finish(cost);
      r.lease.finish(cost + 1n); // a second finish changes nothing
      records.push(record(owner.id, cost, r.lease.ids));
    }
    // One row for the lease, three for the exact reservations: the 300 requests added none.
    expect((await rows(owner)).n).toBe(4);
    // Written in two batches, one of them twice (a replay): settled once.
    await usage.writeBatch(records.slice(0, 150));
    await usage.writeBatch(records.slice(0, 150));
    await usage.writeBatch(records.slice(150));
    // Idle: the lease's unused part is given back; its row is gone once settled to zero.
    await until("the lease given back", async () => budgets.leasesHeld().length === 0);
    const spent = records.reduce((a, r) => a + r.costNanos, 0n);
    let state = await budgets.getBudget(owner);
    expect(state?.spentNanos).toBe(spent);
    // Only the three exact reservations are left: exactly their worst cases.
    expect(state?.reservedNanos).toBe(3n * worst);
    expect(await rows(owner)).toEqual({ n: 3, amount: 3n * worst });
    // Their records settle them.
    await usage.writeBatch([firstId, secondId, thirdId].map((id) => ({ ...record(owner.id, 900n), id })));
    state = await budgets.getBudget(owner);
    expect(state).toMatchObject({ spentNanos: spent + 2_700n, reservedNanos: 0n });
    expect(await rows(owner)).toEqual({ n: 0, amount: 0n });
  });

  it("takes no lease on a budget nearly spent: every request reserves exactly, and the last units are not stranded", async () => {
    const budgets = open();
    const owner = user();
    const worst = 1_000n;
    await budgets.setBudget(owner, 20n * worst); // 20/32 of a worst case per lease: below 16 worst cases
    let admitted = 0;
    for (let i = 0; i < 25; i++) {
      const r = await budgets.reserve(uuidv7(), [owner], worst);
      if (r.admitted) {
        expect(r.lease).toBeUndefined();
        admitted++;
      }
    }
    await sleep(200);
    expect(budgets.leasesHeld()).toEqual([]);
    expect(admitted).toBe(20);
    expect((await budgets.getBudget(owner))?.remainingNanos).toBe(0n);
  });

  it("two processes leasing one budget admit no more than it holds, and reconcile exactly", async () => {
    const a = open();
    const b = open();
    const owner = user();
    const worst = 1_000n;
    const amount = 2_000n * worst;
    await a.setBudget(owner, amount);
    const records: UsageRecord[] = [];
    let admittedWorst = 0n;
    // 3,000 requests, more than the budget can take, interleaved between the two processes and settled as they go.
    const run = async (store: BudgetStore, n: number) => {
      for (let i = 0; i < n; i++) {
        const id = uuidv7();
        const r = await store.reserve(id, [owner], worst);
        if (!r.admitted) continue;
        admittedWorst += worst;
        const cost = worst - BigInt(i % 3);
        r.lease?.finish(cost);
        const rec = record(owner.id, cost, r.lease?.ids);
        rec.id = id; // exact reservations are settled by the record with the request's id
        records.push(rec);
        if (records.length % 100 === 0) await usage.writeBatch(records.slice(-100));
      }
    };
    await Promise.all([run(a, 1_500), run(b, 1_500)]);
    await usage.writeBatch(records);
    await until("leases given back", async () => a.leasesHeld().length + b.leasesHeld().length === 0);
    await until("rows settled", async () => (await rows(owner)).n === 0);
    const spent = records.reduce((acc, r) => acc + r.costNanos, 0n);
    const state = await a.getBudget(owner);
    // Never more spent than the budget (costs below the worst case let a few more requests in), nearly all of it
    // used (nothing stranded in a lease), and exactly the records' total.
    expect(spent).toBeLessThanOrEqual(amount);
    expect(spent).toBeGreaterThan(amount - 2n * worst);
    expect(admittedWorst).toBeGreaterThanOrEqual(amount);
    expect(state).toMatchObject({ spentNanos: spent, reservedNanos: 0n, amountNanos: amount });
  });

  it("a lease left by a process that died is released by the sweep after its TTL", async () => {
    const dead = createBudgetStore(db.pool, { cacheTtlMs: 60_000, leases: { ttlMs: 300, idleMs: 60_000 } });
    stores.push(dead);
    const owner = user();
    await dead.setBudget(owner, 64_000_000n);
    await dead.reserve(uuidv7(), [owner], 1_000n);
    await dead.reserve(uuidv7(), [owner], 1_000n);
    await until("a lease", async () => dead.leasesHeld().length === 1);
    const lease = await dead.reserve(uuidv7(), [owner], 1_000n);
    expect(lease.admitted && lease.lease).toBeTruthy();
    // The process is gone (nothing given back): the sweep of another process frees the lease once expired.
    const other = open();
    expect(await other.sweepExpired(Date.now() + 1_000)).toBe(1); // the lease; exact reservations live 15 min
    expect(await rows(owner)).toEqual({ n: 2, amount: 2_000n });
    // (The sweep is global: it also frees what the other tests of this file left reserved.)
    expect(await other.sweepExpired(Date.now() + 16 * 60_000)).toBeGreaterThanOrEqual(1);
    expect(await rows(owner)).toEqual({ n: 0, amount: 0n });
    expect((await other.getBudget(owner))?.reservedNanos).toBe(0n);
  });
});
