import { createRequire } from "node:module";
import { extname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Piscina } from "piscina";
import { ocrError } from "./errors.js";
import type { Failed, InspectReply, RenderReply } from "./render-worker.js";

/** A rendered page: PNG bytes, pixel size and the resolution actually used. */
export interface RenderedPage {
  png: Uint8Array;
  width: number;
  height: number;
  dpi: number;
}

/** Opens and renders PDFs in worker threads; one per process, closed at shutdown. */
export interface RenderPool {
  /** The page count; InvalidArgument CORRUPT_DOCUMENT when the PDF does not open. */
  pageCount(pdf: Uint8Array, signal?: AbortSignal, param?: string): Promise<number>;
  /** Page `page` (0-based) as a PNG. `pdf` should be backed by a SharedArrayBuffer (see `shareBytes`). */
  render(pdf: Uint8Array, page: number, signal?: AbortSignal, param?: string): Promise<RenderedPage>;
  close(): Promise<void>;
}

export interface RenderPoolOptions {
  threads: number;
  /** Resolution of rendered pages. */
  dpi: number;
  /** Longest side of a rendered page, in pixels (the resolution is lowered to fit). Default 4096. */
  maxSidePx?: number;
  /** A task unfinished after this long is stopped, its worker terminated (RENDER_TIMEOUT). Default 60 s. */
  timeoutMs?: number;
  /** How long an idle worker lives (the pool keeps no thread when idle). Default 60 s. */
  idleTimeoutMs?: number;
}

/**
 * Each page is its own task, so that pages render in parallel and the first upstream call starts once the first
 * page is ready. Every task reads the same document: a SharedArrayBuffer, so that it is not copied once per page.
 */
export function shareBytes(bytes: Uint8Array): Uint8Array {
  const shared = new Uint8Array(new SharedArrayBuffer(bytes.byteLength));
  shared.set(bytes);
  return shared;
}

/**
 * Rendering a PDF page is CPU-bound (tens to hundreds of ms, more for heavy pages): in the main thread it would stall
 * every request of the gateway. The worker file sits beside this one: `.ts` from sources (vitest, tsx), run with tsx
 * as a loader, `.js` in the compiled dist/.
 */
export function createRenderPool(opts: RenderPoolOptions): RenderPool {
  const ext = extname(fileURLToPath(import.meta.url));
  const pool = new Piscina({
    filename: fileURLToPath(new URL(`./render-worker${ext}`, import.meta.url)),
    minThreads: 0,
    maxThreads: opts.threads,
    idleTimeout: opts.idleTimeoutMs ?? 60_000,
    // Nothing reads piscina's run/wait-time histograms; each holds ~360 KB of native memory from the start.
    recordTiming: false,
    ...(ext === ".ts" && { execArgv: tsxExecArgv() }),
  });
  const timeoutMs = opts.timeoutMs ?? 60_000;

  async function run<R extends { ok: true } | Failed>(
    name: string,
    task: unknown,
    signal: AbortSignal | undefined,
    param = "document",
  ): Promise<Exclude<R, Failed>> {
    const timeout = AbortSignal.timeout(timeoutMs);
    let reply: R;
    try {
      reply = await pool.run(task, { name, signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
    } catch (e) {
      if (timeout.aborted && !signal?.aborted) {
        throw ocrError("RENDER_TIMEOUT", `Reading the document took longer than ${timeoutMs / 1000} s.`, param);
      }
      throw e;
    }
    if (!reply.ok) throw ocrError(reply.reason, reply.message, param);
    return reply as Exclude<R, Failed>;
  }

  return {
    async pageCount(pdf, signal, param) {
      return (await run<InspectReply>("default", { bytes: pdf }, signal, param)).pageCount;
    },
    async render(pdf, page, signal, param) {
      const task = { bytes: pdf, page, dpi: opts.dpi, maxSidePx: opts.maxSidePx ?? 4096 };
      const { ok: _ok, ...rendered } = await run<RenderReply>("renderPage", task, signal, param);
      return rendered;
    },
    close: () => pool.close(),
  };
}

/** tsx is a dev dependency, resolved from here rather than from the current directory. */
function tsxExecArgv(): string[] {
  const loader = createRequire(import.meta.url).resolve("tsx");
  return ["--import", pathToFileURL(loader).href];
}
