// Durability of the usage journal against the real PostgreSQL, reached through a TCP proxy this file cuts and
// restores (a real outage for the pg pool), and against a real crash (a child process killed with SIGKILL).
import { spawn } from "node:child_process";
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { v7 as uuidv7 } from "uuid";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/support/db.js";
import { startTcpProxy, type TcpProxy } from "../../test/support/tcp-proxy.js";
import {
  countBackgroundOpens,
  eventually,
  journalRecord as record,
  journalDir as tempDir,
} from "../../test/support/usage-journal.js";
import { type Database, openDatabase } from "../platform/db/database.js";
import { type BudgetStore, createBudgetStore } from "./budget-store.js";
import { governanceEntities, type UsageRecord } from "./entities.js";
import { createUsageBuffer } from "./usage-buffer.js";
import { createUsageStore, type UsageStore } from "./usage-store.js";

/** The segments that hold records (the journal keeps its next segment open ahead, empty). */
const segments = (dir: string) =>
  fs.readdirSync(dir).filter((f) => f.startsWith("usage-") && fs.statSync(path.join(dir, f)).size > 0);

describe("usage journal, on its own", () => {
  it("refuses invalid records before they reach the disk", async () => {
    const dir = tempDir();
    const buf = await createUsageBuffer({ dir, sink: async () => undefined });
    expect(() => buf.record(record({ promptTokens: -1 }))).toThrow(/promptTokens/);
    expect(() => buf.record(record({ userId: "someone" }))).toThrow(/userId/);
    expect(() => buf.record(record({ costNanos: 1 as unknown as bigint }))).toThrow(/costNanos/);
    expect(() => buf.record(record({ model: "" }))).toThrow(/model/);
    expect(() => buf.record(record({ kwhMax: Number.NaN }))).toThrow(/kwhMax/);
    expect(buf.depth()).toBe(0);
    await buf.close();
    expect(segments(dir)).toEqual([]);
  });

  it("skips a segment removed between its listing and its reading, and writes the others", async () => {
    const dir = tempDir();
    const kept = record();
    const first = await createUsageBuffer({ dir, sink: async () => Promise.reject(new Error("down")) });
    first.record(record());
    await first.close();
    const second = await createUsageBuffer({ dir, sink: async () => Promise.reject(new Error("down")) });
    second.record(kept);
    await second.close();
    const [gone, left] = segments(dir);
    // The replay lists both, then the first vanishes before it is read (as if removed by hand).
    const readFile = fsp.readFile;
    const reads = vi.spyOn(fsp, "readFile").mockImplementation((async (file: string, enc: BufferEncoding) => {
      if (String(file).endsWith(gone as string)) fs.rmSync(file);
      return readFile(file, enc);
    }) as typeof fsp.readFile);
    const delivered: UsageRecord[] = [];
    try {
      const third = await createUsageBuffer({ dir, sink: async (b) => void delivered.push(...b) });
      expect(await third.flush()).toBe(true);
      await third.close();
    } finally {
      reads.mockRestore();
    }
    expect(delivered).toEqual([kept]);
    expect(segments(dir)).toEqual([]);
    expect(left).toBeDefined();
  });

  it("sets aside a record the database refuses for good, and writes the others", async () => {
    const dir = tempDir();
    const bad = record();
    const delivered: string[] = [];
    const sink = async (batch: UsageRecord[]) => {
      if (batch.some((r) => r.id === bad.id)) throw Object.assign(new Error("check violation"), { code: "23514" });
      delivered.push(...batch.map((r) => r.id));
    };
    const buf = await createUsageBuffer({ dir, sink, batchSize: 10, flushIntervalMs: 60_000 });
    const good = Array.from({ length: 7 }, () => record());
    for (const r of [...good.slice(0, 3), bad, ...good.slice(3)]) buf.record(r);
    expect(await buf.flush()).toBe(true);
    expect(delivered.sort()).toEqual(good.map((r) => r.id).sort());
    expect(buf.stats()).toMatchObject({ rejected: 1, depth: 0, flushed: 8 });
    expect(fs.readFileSync(path.join(dir, "rejected.jsonl"), "utf8")).toContain(bad.id);
    await buf.close();
  });
});

describe("usage journal writes", () => {
  it("writes each record as one whole line, multi-byte text included, whatever the length of the line before", async () => {
    const dir = tempDir();
    const delivered: UsageRecord[] = [];
    const buf = await createUsageBuffer({ dir, sink: async (b) => void delivered.push(...b), flushIntervalMs: 60_000 });
    // Longest first, then shorter: a line must not carry bytes of the one written before it.
    const recs = [
      record({ model: "modèle-😀-日本語-".repeat(12).slice(0, 200), errorCode: "é".repeat(100), status: 500 }),
      record({ model: "m" }),
      record({ model: "ß€𝄞".repeat(40), requestId: "req-ü".repeat(25) }),
      record({ model: "short" }),
    ];
    for (const r of recs) buf.record(r);
    const [file] = segments(dir);
    const text = fs.readFileSync(path.join(dir, file as string), "utf8");
    expect(text.endsWith("\n")).toBe(true);
    const lines = text.slice(0, -1).split("\n");
    expect(lines.map((l) => (JSON.parse(l) as { id: string }).id)).toEqual(recs.map((r) => r.id));
    expect(await buf.flush()).toBe(true);
    expect(delivered).toEqual(recs);
    await buf.close();
  });

  it("opens the next segment ahead: the record that starts a segment creates no file; close removes the spare", async () => {
    const dir = tempDir();
    const delivered: UsageRecord[] = [];
    const opens = countBackgroundOpens();
    const syncOpens = vi.spyOn(fs, "openSync");
    try {
      const buf = await createUsageBuffer({
        dir,
        sink: async (b) => void delivered.push(...b),
        flushIntervalMs: 60_000,
      });
      await eventually(async () => opens.done() === 1);
      const first = record();
      buf.record(first);
      expect(await buf.flush()).toBe(true);
      // The flush sealed the segment: the next one is opened ahead again.
      await eventually(async () => opens.done() === 2);
      const second = record();
      buf.record(second);
      expect(segments(dir)).toHaveLength(1);
      expect(syncOpens).not.toHaveBeenCalled();
      expect(await buf.flush()).toBe(true);
      expect(delivered).toEqual([first, second]);
      await buf.close();
    } finally {
      opens.restore();
      syncOpens.mockRestore();
    }
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it("writes a segment in calls of writeSize records, and writes it again whole after a failed call", async () => {
    const dir = tempDir();
    const calls: number[] = [];
    const stored = new Set<string>();
    let failOnce = true;
    const sink = async (batch: UsageRecord[]) => {
      calls.push(batch.length);
      // The second call of the first attempt fails: the first one's records are already stored.
      if (calls.length === 2 && failOnce) {
        failOnce = false;
        throw new Error("connection reset");
      }
      for (const r of batch) stored.add(r.id);
    };
    const buf = await createUsageBuffer({
      dir,
      sink,
      batchSize: 50,
      writeSize: 10,
      flushIntervalMs: 60_000,
      retryMinMs: 1,
      retryMaxMs: 1,
    });
    const recs = Array.from({ length: 25 }, () => record());
    for (const r of recs) buf.record(r);
    expect(await buf.flush()).toBe(false);
    expect(calls).toEqual([10, 10]);
    expect(buf.depth()).toBe(25);
    expect(await buf.flush()).toBe(true);
    // The retry starts the segment over: the idempotent sink sees the first ten again.
    expect(calls).toEqual([10, 10, 10, 10, 5]);
    expect([...stored].sort()).toEqual(recs.map((r) => r.id).sort());
    expect(buf.stats()).toMatchObject({ depth: 0, flushed: 25, flushFailures: 1 });
    expect(segments(dir)).toEqual([]);
    await buf.close();
  });
});

describe("usage journal on PostgreSQL", () => {
  let tdb: TestDatabase;
  let db: Database;
  let proxy: TcpProxy;
  let store: UsageStore;
  let budgets: BudgetStore;

  beforeAll(async () => {
    tdb = await createTestDatabase("gov_journal");
    proxy = await startTcpProxy(tdb.url);
    db = await openDatabase({ url: proxy.url, dataDir: os.tmpdir(), entities: governanceEntities, poolMax: 4 });
    store = createUsageStore(db.pool);
    budgets = createBudgetStore(db.pool);
  });
  afterAll(async () => {
    await proxy?.up().catch(() => undefined);
    await db?.close();
    await proxy?.close();
    await tdb?.drop();
  });

  /** How many times each id is in the ledger. */
  const counts = async (ids: string[]) => {
    const pool = db.pool;
    const { rows } = await pool.query<{ id: string; n: number }>(
      "select id, count(*)::int as n from usage_record where id = any($1::uuid[]) group by id",
      [ids],
    );
    return new Map(rows.map((r) => [r.id, r.n]));
  };
  const expectExactlyOnce = async (ids: string[]) => {
    const n = await counts(ids);
    expect(n.size).toBe(ids.length);
    expect([...n.values()].every((c) => c === 1)).toBe(true);
  };

  it("writes every record exactly once across an outage, and settles budgets once", async () => {
    const dir = tempDir();
    const user = { kind: "user" as const, id: uuidv7() };
    await budgets.setBudget(user, 1_000_000n);
    const recs = Array.from({ length: 600 }, (_, i) => record({ userId: user.id, costNanos: BigInt(i % 50) }));
    for (let i = 0; i < recs.length; i += 100) {
      await Promise.all(recs.slice(i, i + 100).map((r) => budgets.reserve(r.id, [user], 100n)));
    }
    let calls = 0;
    // The third batch commits but its acknowledgement is lost (a crash between commit and segment deletion).
    const sink = async (batch: UsageRecord[]) => {
      await store.writeBatch(batch);
      if (++calls === 3) throw new Error("acknowledgement lost");
    };
    const buf = await createUsageBuffer({
      dir,
      sink,
      batchSize: 50,
      flushIntervalMs: 20,
      retryMinMs: 10,
      retryMaxMs: 100,
    });
    for (const [i, r] of recs.entries()) {
      if (i === 200) await proxy.down();
      if (i === 450) {
        expect(buf.depth()).toBeGreaterThanOrEqual(250);
        expect(segments(dir).length).toBeGreaterThanOrEqual(5);
        await proxy.up();
      }
      buf.record(r);
      if (i % 10 === 0) await sleep(5);
    }
    await eventually(() => buf.flush());
    expect(buf.stats().flushFailures).toBeGreaterThan(0);
    expect(segments(dir)).toEqual([]);
    await expectExactlyOnce(recs.map((r) => r.id));
    const total = recs.reduce((s, r) => s + r.costNanos, 0n);
    expect(await budgets.getBudget(user)).toMatchObject({ spentNanos: total, reservedNanos: 0n });
    await buf.close();
  });

  it("replays what a closed buffer left on disk when the next one starts", async () => {
    const dir = tempDir();
    await proxy.down();
    const sink = (batch: UsageRecord[]) => store.writeBatch(batch);
    const first = await createUsageBuffer({ dir, sink, batchSize: 40, flushIntervalMs: 20, retryMinMs: 10 });
    const recs = Array.from({ length: 120 }, () => record());
    for (const r of recs) first.record(r);
    await first.close();
    expect(first.depth()).toBe(120);
    const late = record();
    first.record(late); // finished during shutdown: still journaled
    await proxy.up();
    const second = await createUsageBuffer({ dir, sink, batchSize: 40, flushIntervalMs: 20 });
    expect(second.depth()).toBe(121);
    await eventually(async () => second.depth() === 0);
    await expectExactlyOnce([...recs, late].map((r) => r.id));
    expect(second.stats().flushed).toBe(121);
    await second.close();
  });

  it("loses nothing when the process is killed, even mid-line", async () => {
    const dir = tempDir();
    const ids = Array.from({ length: 75 }, () => uuidv7());
    const template = { ...record(), createdAt: new Date().toISOString(), costNanos: "7" };
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "--input-type=module",
        "-e",
        `const { createUsageBuffer } = await import(process.env.MODULE);
         const t = JSON.parse(process.env.TEMPLATE);
         const buf = await createUsageBuffer({ dir: process.env.DIR, sink: () => new Promise(() => {}), batchSize: 20, flushIntervalMs: 5 });
         for (const id of JSON.parse(process.env.IDS)) buf.record({ ...t, id, createdAt: new Date(t.createdAt), costNanos: BigInt(t.costNanos) });
         process.stdout.write("recorded\\n");
         process.kill(process.pid, "SIGKILL");`,
      ],
      {
        env: {
          ...process.env,
          MODULE: fileURLToPath(new URL("./usage-buffer.ts", import.meta.url)),
          TEMPLATE: JSON.stringify(template),
          IDS: JSON.stringify(ids),
          DIR: dir,
        },
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    const signal = await new Promise((resolve) => child.on("exit", (_code, sig) => resolve(sig)));
    expect(signal).toBe("SIGKILL");
    expect(out).toBe("recorded\n");
    const files = segments(dir).sort();
    expect(files.length).toBe(4);
    fs.appendFileSync(path.join(dir, files[files.length - 1] as string), '{"id":"0192'); // torn write
    const buf = await createUsageBuffer({ dir, sink: (b) => store.writeBatch(b), flushIntervalMs: 20 });
    await eventually(() => buf.flush());
    await expectExactlyOnce(ids);
    expect(buf.stats()).toMatchObject({ flushed: 75, rejected: 0 });
    await buf.close();
  });
});
