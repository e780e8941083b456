import { threadId } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { makePdf, utf8 } from "../../../test/fixtures/documents.js";
import { IngestError } from "./errors.js";
import { createParserPool } from "./parser-pool.js";

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
});
