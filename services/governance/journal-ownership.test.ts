// Who owns the usage journal's directory and its files: one live journal per directory, and records written after a
// journal closed (requests that ended during shutdown) kept apart from the segments of the journal that took over.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it, vi } from "vitest";
import {
  countBackgroundOpens,
  eventually,
  journalRecord as record,
  journalDir as tempDir,
} from "../../test/support/usage-journal.js";
import type { UsageRecord } from "./entities.js";
import { createUsageBuffer } from "./usage-buffer.js";

describe("usage journal ownership", () => {
  it("belongs to one live process at a time", async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, "journal.lock"), String(process.ppid));
    await expect(createUsageBuffer({ dir, sink: async () => undefined })).rejects.toThrow(/running process/);
    fs.writeFileSync(path.join(dir, "journal.lock"), "4194000"); // above pid_max: a process long gone
    const buf = await createUsageBuffer({ dir, sink: async () => undefined });
    expect(fs.readFileSync(path.join(dir, "journal.lock"), "utf8")).toBe(String(process.pid));
    // A lock with this pid is stale for a restarted process, but not while a journal of this process holds it.
    await expect(createUsageBuffer({ dir: `${dir}/.`, sink: async () => undefined })).rejects.toThrow(/this process/);
    await buf.close();
    expect(fs.existsSync(path.join(dir, "journal.lock"))).toBe(false);
    const again = await createUsageBuffer({ dir, sink: async () => undefined });
    await again.close();
  });

  it("keeps a record written after close apart from the segments of the journal that took the directory since", async () => {
    const dir = tempDir();
    const delivered: string[] = [];
    const sink = async (batch: UsageRecord[]) => void delivered.push(...batch.map((r) => r.id));
    const opts = { dir, sink, flushIntervalMs: 60_000 };
    const opens = countBackgroundOpens();
    try {
      const first = await createUsageBuffer(opts);
      await eventually(async () => opens.done() === 1);
      const early = record();
      first.record(early); // in segment 1, opened ahead
      await first.close();
      // The next process (here: journal) takes the directory. It is empty: its segments are numbered from 1 again.
      const second = await createUsageBuffer(opts);
      await eventually(async () => opens.done() === 2);
      const own = record();
      second.record(own);
      // A request of the first process finished during its shutdown: journaled after its close, as segment 2.
      const late = record();
      first.record(late);
      // The second seals its segment and opens its next one ahead: segment 2 is not its own, it takes 3.
      expect(await second.flush()).toBe(true);
      await eventually(async () => fs.existsSync(path.join(dir, "usage-000000000003.jsonl")));
      await second.close();
      expect(delivered).toEqual([early.id, own.id]);
      // The late record is on disk for the next start.
      const third = await createUsageBuffer(opts);
      expect(third.depth()).toBe(1);
      expect(await third.flush()).toBe(true);
      await third.close();
      expect(delivered).toEqual([early.id, own.id, late.id]);
    } finally {
      opens.restore();
    }
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it("renames a late record into place on a filesystem without hard links", async () => {
    const dir = tempDir();
    const delivered: string[] = [];
    const sink = async (batch: UsageRecord[]) => void delivered.push(...batch.map((r) => r.id));
    const first = await createUsageBuffer({ dir, sink, flushIntervalMs: 60_000 });
    await first.close();
    const noLinks = vi.spyOn(fs, "linkSync").mockImplementation(() => {
      throw Object.assign(new Error("operation not permitted"), { code: "EPERM" });
    });
    const late = record();
    try {
      first.record(late);
    } finally {
      noLinks.mockRestore();
    }
    expect(fs.readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    const second = await createUsageBuffer({ dir, sink, flushIntervalMs: 60_000 });
    expect(await second.flush()).toBe(true);
    await second.close();
    expect(delivered).toEqual([late.id]);
  });

  it("adopts the record that a process killed mid-way through a late write left aside", async () => {
    const dir = tempDir();
    const delivered: string[] = [];
    const sink = async (batch: UsageRecord[]) => void delivered.push(...batch.map((r) => r.id));
    const late = record();
    const line = `${JSON.stringify({ ...late, createdAt: late.createdAt.toISOString(), costNanos: "3" })}\n`;
    // Written whole, not yet linked as a segment, by a process now gone (pids above pid_max never run).
    fs.writeFileSync(path.join(dir, "late-4194001-0.tmp"), line);
    const buf = await createUsageBuffer({ dir, sink, flushIntervalMs: 60_000 });
    expect(buf.depth()).toBe(1);
    expect(await buf.flush()).toBe(true);
    await buf.close();
    expect(delivered).toEqual([late.id]);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
