import type { ChatCompletionParams } from "../../gen/passerelle/inference/v1/chat_pb.js";
import { invalidArgument } from "../platform/errors.js";

/** Checks of a chat request that the REST bridge cannot make for RPC callers, before anything is reserved. */

/**
 * Request fields that decide what a request may cost. The reservation reads them from their typed fields; in
 * `extra`, which is forwarded as is, they would reach the model unreserved (the REST bridge never puts them there;
 * an RPC caller could).
 */
const COST_FIELDS = ["model", "messages", "max_tokens", "max_completion_tokens", "n", "stream", "stream_options"];
/** OpenAI's bound on `n`; vLLM's `best_of` (a vendor extra) shares it. */
const MAX_CHOICES = 128;

/**
 * How many sequences the model will generate, for the reservation: `n`, or vLLM's `best_of` (it generates that
 * many and returns the best `n`). Both bounded, so that the worst case stays a safe integer.
 */
export function choicesGenerated(p: ChatCompletionParams): number {
  for (const k of COST_FIELDS) {
    if (p.extra && Object.hasOwn(p.extra, k)) {
      throw invalidArgument(`'${k}' must be sent in its own field, not in 'extra'.`, k);
    }
  }
  const n = p.n ?? 1;
  if (!Number.isInteger(n) || n < 1 || n > MAX_CHOICES) {
    throw invalidArgument(`'n' must be an integer from 1 to ${MAX_CHOICES}.`, "n");
  }
  const bestOf = p.extra?.best_of;
  if (bestOf == null) return n;
  if (typeof bestOf !== "number" || !Number.isInteger(bestOf) || bestOf < n || bestOf > MAX_CHOICES) {
    throw invalidArgument(`'best_of' must be an integer from 'n' to ${MAX_CHOICES}.`, "best_of");
  }
  return bestOf;
}

/** OpenAI refuses `stream_options` on a request that does not stream; so does vLLM, which never sees it here. */
export function refuseStreamOptions(p: ChatCompletionParams): void {
  if (p.streamOptions) {
    throw invalidArgument("'stream_options' is only allowed when 'stream' is true.", "stream_options");
  }
}
