import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "./logging.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A logger writing to a file of its own; `lines()` reads what reached the file. */
function fileLogger(flushMs?: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "passerelle-log-"));
  dirs.push(dir);
  const file = path.join(dir, "out.log");
  const fd = fs.openSync(file, "a");
  const lines = () =>
    fs
      .readFileSync(file, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { logger: createLogger("info", { fd, flushMs }), lines };
}

async function until<T>(read: () => T, ok: (v: T) => boolean, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = read();
    if (ok(v) || Date.now() > deadline) return v;
    await sleep(10);
  }
}

describe("createLogger", () => {
  it("holds lines, then writes them together within the flush delay", async () => {
    const { logger, lines } = fileLogger();
    logger.info({ n: 1 }, "first");
    logger.info({ n: 2 }, "second");
    logger.child({ reqId: "r-1" }).warn("third");
    // Nothing is written synchronously: the lines are held.
    expect(lines()).toEqual([]);
    const got = await until(lines, (l) => l.length === 3);
    expect(got.map((l) => l.msg)).toEqual(["first", "second", "third"]);
    expect(got[2]).toMatchObject({ reqId: "r-1", level: 40 });
    // Later lines are not stuck behind the first flush.
    logger.info("fourth");
    expect((await until(lines, (l) => l.length === 4)).map((l) => l.msg)).toContain("fourth");
  });

  it("writes without waiting once 4 KiB are held", async () => {
    // A timer that never fires within the test: only the buffer's size can trigger a write.
    const { logger, lines } = fileLogger(600_000);
    logger.info("alone");
    await sleep(300);
    expect(lines()).toEqual([]);
    for (let i = 0; i < 40; i++) logger.info({ i, pad: "x".repeat(120) }, "bulk");
    const got = await until(lines, (l) => l.length >= 20);
    expect(got[0]?.msg).toBe("alone");
    expect(got.length).toBeGreaterThanOrEqual(20);
  });

  it("writes non-ASCII text intact and in order, across several writes", async () => {
    // Lines are held as bytes: a multi-byte character must never be cut, wherever a write ends.
    const { logger, lines } = fileLogger(600_000);
    const text = "Résumé — 日本語 🚀 ";
    for (let i = 0; i < 120; i++) logger.info({ i, text: text.repeat(1 + (i % 7)) }, "ütf-8");
    logger.flush();
    const got = await until(lines, (l) => l.length === 120);
    expect(got.map((l) => l.i)).toEqual(Array.from({ length: 120 }, (_, i) => i));
    for (const l of got) expect(l).toMatchObject({ msg: "ütf-8", text: text.repeat(1 + ((l.i as number) % 7)) });
  });

  it("keeps redacting secrets", async () => {
    const { logger, lines } = fileLogger();
    logger.info({ headers: { authorization: "Bearer sk-secret" }, password: "hunter2" }, "req");
    const [line] = await until(lines, (l) => l.length === 1);
    expect(JSON.stringify(line)).not.toMatch(/sk-secret|hunter2/);
    expect(line).toMatchObject({ headers: { authorization: "[redacted]" }, password: "[redacted]" });
  });

  it("writes what it holds when the process exits", () => {
    const module = fileURLToPath(new URL("./logging.ts", import.meta.url));
    const run = spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        "--input-type=module",
        "-e",
        `const { createLogger } = await import(${JSON.stringify(module)});
         const log = createLogger("info");
         log.info("held at exit");
         process.exit(0);`,
      ],
      { encoding: "utf8", timeout: 30_000 },
    );
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('"msg":"held at exit"');
  });
});
