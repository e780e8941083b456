// Helpers of the usage journal's tests (services/governance/usage-buffer.test.ts, journal-ownership.test.ts).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { vi } from "vitest";
import type { UsageRecord } from "../../services/governance/entities.js";
import { usageRecord } from "./usage-record.js";

export const journalRecord = (over: Partial<UsageRecord> = {}): UsageRecord => usageRecord({ costNanos: 3n, ...over });

export const journalDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "usage-journal-"));

/** Counts the journal's background opens (`fs.open`) once their callbacks have run: the spare is then ready. */
export function countBackgroundOpens() {
  const open = fs.open;
  let done = 0;
  const spy = vi.spyOn(fs, "open").mockImplementation(((
    file: string,
    flags: string,
    cb: (err: NodeJS.ErrnoException | null, fd: number) => void,
  ) =>
    open(file, flags, (err, fd) => {
      cb(err, fd);
      done++;
    })) as unknown as typeof fs.open);
  return { done: () => done, restore: () => spy.mockRestore() };
}

/** Polls `ok` until it holds (test/support/governance.ts has the same for platforms, but loads the whole platform). */
export async function eventually(ok: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error("timed out");
    await sleep(20);
  }
}
