import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { extname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Piscina } from "piscina";
import { IngestError } from "./errors.js";
import type { FailedReply, ParseReply, SplitReply } from "./parse-worker.js";
import type { SplitOptions } from "./split.js";
import type { ParsedUpload, UploadInput } from "./types.js";

/** Parses uploads in worker threads; one per process, closed at shutdown. */
export interface ParserPool {
  parse(input: UploadInput, opts?: { signal?: AbortSignal }): Promise<ParsedUpload>;
  /** splitText (split.ts) in a worker, under the same timeout. */
  split(text: string, options: SplitOptions, opts?: { signal?: AbortSignal }): Promise<string[]>;
  /** For tests and metrics: tasks piscina completed, and the ids of the threads that returned a parse. */
  stats(): { completed: number; threadIds: number[] };
  /** Waits for the parses under way, then stops the workers. */
  close(): Promise<void>;
}

export interface ParserPoolOptions {
  /** Default: half the cores, at most 4 (pdf.js holds tens of MB per worker). */
  maxThreads?: number;
  /** How long an idle worker lives before it exits; the pool keeps no thread when idle. Default 60 s. */
  idleTimeoutMs?: number;
  /**
   * A parse still unfinished after this long (counted from the call, time queued included) is abandoned, its
   * worker terminated, with PARSE_TIMEOUT: a pathological file must not hold a thread forever. Default 120 s.
   */
  timeoutMs?: number;
}

/**
 * Parsing a PDF or DOCX is CPU-bound for seconds on large files; in the main thread it would stall every request of
 * the gateway. The worker file sits beside this one: `.ts` when running from sources (vitest, tsx), in which case
 * the worker gets tsx as a loader, or `.js` in the compiled dist/, where it needs nothing.
 */
export function createParserPool(opts: ParserPoolOptions = {}): ParserPool {
  const ext = extname(fileURLToPath(import.meta.url));
  const filename = fileURLToPath(new URL(`./parse-worker${ext}`, import.meta.url));
  const maxThreads = opts.maxThreads ?? Math.max(1, Math.min(4, Math.floor(availableParallelism() / 2)));
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const servedBy = new Set<number>();
  const pool = new Piscina({
    filename,
    minThreads: 0,
    maxThreads,
    idleTimeout: opts.idleTimeoutMs ?? 60_000,
    // Nothing reads piscina's run/wait-time histograms; each holds ~360 KB of native memory from the start.
    recordTiming: false,
    ...(ext === ".ts" && { execArgv: tsxExecArgv() }),
  });

  /**
   * Runs one task under the timeout (the caller's signal also cancels it). A timeout becomes PARSE_TIMEOUT; a task
   * that failed in the worker (`ok: false`) becomes the IngestError it described.
   */
  async function run<R extends { ok: true } | FailedReply>(
    what: "Parsing" | "Splitting",
    task: unknown,
    options: { name?: string; transferList?: ArrayBuffer[]; signal?: AbortSignal },
  ): Promise<Exclude<R, FailedReply>> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    let reply: R;
    try {
      reply = await pool.run(task, { ...options, signal });
    } catch (e) {
      if (timeout.aborted && !options.signal?.aborted) {
        throw new IngestError("PARSE_TIMEOUT", `${what} took longer than ${timeoutMs / 1000} s and was stopped.`, {
          cause: e,
        });
      }
      throw e;
    }
    if (!reply.ok) throw new IngestError(reply.reason, reply.message, { param: reply.param });
    return reply as Exclude<R, FailedReply>;
  }

  return {
    async parse(input, { signal } = {}) {
      // One copy, then a transfer (no second copy by structured clone); the caller's bytes stay usable.
      const bytes = input.bytes.slice();
      const task: UploadInput = { bytes };
      if (input.fileName !== undefined) task.fileName = input.fileName;
      if (input.declaredMime !== undefined) task.declaredMime = input.declaredMime;
      const reply = await run<ParseReply>("Parsing", task, { transferList: [bytes.buffer], signal });
      const { ok: _ok, threadId, ...parsed } = reply;
      servedBy.add(threadId);
      return parsed;
    },
    async split(text, options, { signal } = {}) {
      const reply = await run<SplitReply>("Splitting", { text, options }, { name: "splitTask", signal });
      return reply.chunks;
    },
    stats: () => ({ completed: pool.completed, threadIds: [...servedBy] }),
    close: () => pool.close(),
  };
}

/** tsx is a dev dependency, resolved from here rather than from the current directory. */
function tsxExecArgv(): string[] {
  const loader = createRequire(import.meta.url).resolve("tsx");
  return ["--import", pathToFileURL(loader).href];
}
