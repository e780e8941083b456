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

/** An IngestError as it crosses the worker boundary. */
export type FailedReply = { ok: false; reason: IngestErrorReason; message: string; param?: string };

/** Runs `work`; an IngestError becomes a FailedReply, anything else is thrown. */
async function replying<T extends { ok: true }>(work: () => Promise<T>): Promise<T | FailedReply> {
  try {
    return await work();
  } catch (e) {
    if (!(e instanceof IngestError)) throw e;
    return { ok: false, reason: e.reason, message: e.message, ...(e.param !== undefined && { param: e.param }) };
  }
}

export type ParseReply = ({ ok: true; threadId: number } & ParsedUpload) | FailedReply;

export default function parseTask(task: UploadInput): Promise<ParseReply> {
  return replying(async () => ({ ok: true as const, threadId, ...(await parseUpload(task)) }));
}

export type SplitReply = { ok: true; chunks: string[] } | FailedReply;

/**
 * Splitting, also here: LangChain's splitter is synchronous string work (seconds on a book), and a caller's regular
 * expression separator may backtrack badly; in a worker, the pool's timeout can stop it.
 */
export function splitTask(task: { text: string; options: SplitOptions }): Promise<SplitReply> {
  return replying(async () => ({ ok: true as const, chunks: await splitText(task.text, task.options) }));
}
