import { threadId } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { makePdf, utf8 } from "../../../test/fixtures/documents.js";
import { IngestError } from "./errors.js";
import { createParserPool } from "./parser-pool.js";
import { splitText } from "./split.js";

describe("parser pool", () => {
  it("parses in worker threads, not in the caller's", async () => {
    const pool = createParserPool({ maxThreads: 2 });
    try {
      expect(pool.stats()).toEqual({ completed: 0, threadIds: [] });
      const bytes = await makePdf(["Parallèle."]);
      const results = await Promise.all(Array.from({ length: 4 }, () => pool.parse({ bytes })));
      expect(results.map((r) => r.documents[0]?.text)).toEqual(Array(4).fill("Parallèle."));
      const stats = pool.stats();
      expect(stats.completed).toBe(4);
      expect(stats.threadIds.length).toBeGreaterThanOrEqual(1);
      expect(stats.threadIds.length).toBeLessThanOrEqual(2);
      expect(stats.threadIds).not.toContain(threadId);
    } finally {
      await pool.close();
    }
  });

  it("leaves the caller's bytes usable (it transfers a copy)", async () => {
    const pool = createParserPool({ maxThreads: 1 });
    try {
      const bytes = utf8("Toujours là.");
      const view = bytes.subarray(0, 8);
      await pool.parse({ bytes: view, fileName: "a.txt" });
      expect(view.byteLength).toBe(8);
      expect(bytes.buffer.byteLength).toBe(bytes.length);
      expect(new TextDecoder().decode(bytes)).toBe("Toujours là.");
    } finally {
      await pool.close();
    }
  });

  it("gives up on a parse that takes too long", async () => {
    // 1 ms is shorter than starting a worker, so the first parse cannot finish in time
    const pool = createParserPool({ maxThreads: 1, timeoutMs: 1 });
    try {
      const error = await pool.parse({ bytes: utf8("lent"), fileName: "a.txt" }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(IngestError);
      expect(error).toMatchObject({
        reason: "PARSE_TIMEOUT",
        message: "Parsing took longer than 0.001 s and was stopped.",
      });
    } finally {
      await pool.close();
    }
  });

  it("stops a parse when the caller aborts", async () => {
    const pool = createParserPool({ maxThreads: 1 });
    try {
      const controller = new AbortController();
      const pending = pool.parse({ bytes: utf8("annulé"), fileName: "a.txt" }, { signal: controller.signal });
      controller.abort();
      const error = await pending.catch((e: unknown) => e);
      expect(error).not.toBeInstanceOf(IngestError);
      expect((error as Error).name).toBe("AbortError");
      expect((await pool.parse({ bytes: utf8("repris"), fileName: "a.txt" })).documents[0]?.text).toBe("repris");
    } finally {
      await pool.close();
    }
  });

  it("splits in a worker exactly as splitText does, and stops a runaway separator at the timeout", async () => {
    const text = "# Un\n\nPremier paragraphe assez long.\n\n## Deux\n\nSecond paragraphe, lui aussi.";
    const pool = createParserPool({ maxThreads: 1, timeoutMs: 2_000 });
    try {
      expect(await pool.split(text, { chunkSize: 40 })).toEqual(await splitText(text, { chunkSize: 40 }));
      // A separator that backtracks exponentially on this input: the worker is stopped, the event loop never was.
      const evil = pool.split(`${"a".repeat(40)}!`, { separators: ["(a+)+$"], isSeparatorRegex: true, chunkSize: 5 });
      await expect(evil).rejects.toMatchObject({ reason: "PARSE_TIMEOUT" });
    } finally {
      await pool.close();
    }
  }, 20_000);
});
