/**
 * The piscina task of the parser pool (parser-pool.ts); never imported by the main thread. An IngestError is sent
 * back as a plain object because errors crossing a worker boundary lose their class and own properties; anything
 * else is a bug and is thrown for piscina to relay.
 */
import { threadId } from "node:worker_threads";
import { IngestError, type IngestErrorReason } from "./errors.js";
import { parseUpload } from "./parse.js";
import { type SplitOptions, splitText } from "./split.js";
import type { ParsedUpload, UploadInput } from "./types.js";

export type ParseReply =
  | ({ ok: true; threadId: number } & ParsedUpload)
  | { ok: false; reason: IngestErrorReason; message: string; param?: string };

export default async function parseTask(task: UploadInput): Promise<ParseReply> {
  try {
    return { ok: true, threadId, ...(await parseUpload(task)) };
  } catch (e) {
    if (!(e instanceof IngestError)) throw e;
    return { ok: false, reason: e.reason, message: e.message, ...(e.param !== undefined && { param: e.param }) };
  }
}

export type SplitReply =
  | { ok: true; chunks: string[] }
  | { ok: false; reason: IngestErrorReason; message: string; param?: string };

/**
 * Splitting, also here: LangChain's splitter is synchronous string work (seconds on a book), and a caller's regular
 * expression separator may backtrack badly; in a worker, the pool's timeout can stop it.
 */
export async function splitTask(task: { text: string; options: SplitOptions }): Promise<SplitReply> {
  try {
    return { ok: true, chunks: await splitText(task.text, task.options) };
  } catch (e) {
    if (!(e instanceof IngestError)) throw e;
    return { ok: false, reason: e.reason, message: e.message, ...(e.param !== undefined && { param: e.param }) };
  }
}
