import type { ServerResponse } from "node:http";
import { SimulatorHttpError } from "./http.js";
import type { SimulatedModel, SimulatorOptions } from "./types.js";

/**
 * A request's cancellation: the client went away or the simulator closed. Hand-rolled rather than AbortController,
 * whose EventTarget machinery costs more per request than everything else the simulator does (measured: creating,
 * reading `.signal` and aborting one per request cut throughput by more than half).
 */
export class Cancellation {
  aborted = false;
  private why: Error | undefined;
  private listeners: ((reason: Error) => void)[] = [];

  /** Why it was aborted (no Error is built before that: capturing a stack per request is costly). */
  get reason(): Error {
    this.why ??= new Error("cancelled");
    return this.why;
  }

  abort(reason: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.why = reason;
    const listeners = this.listeners;
    this.listeners = [];
    for (const l of listeners) l(reason);
  }

  /** Calls `fn` on abort (at once when already aborted); returns a function that unsubscribes it. */
  onAbort(fn: (reason: Error) => void): () => void {
    if (this.aborted) {
      fn(this.reason);
      return () => undefined;
    }
    this.listeners.push(fn);
    return () => {
      const i = this.listeners.indexOf(fn);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }
}

/** What a route handler gets for one chat or embeddings request. */
export interface RequestContext {
  res: ServerResponse;
  /** The options as they were when the request arrived (later `setOptions` calls do not change it). */
  opts: SimulatorOptions;
  /** Aborted when the client goes away or the simulator closes: every wait ends at once. */
  cancel: Cancellation;
  requestId: string;
  /** Waits for a generation slot (`maxNumSeqs`, vLLM's scheduler); resolves to its release. */
  acquireSlot(model: string): Promise<() => void>;
  /** Feeds `/metrics` counters once a request is done. */
  recordDone(model: string, promptTokens: number, completionTokens: number, finishReason: string): void;
  /** Names the model the request is for (for events and metrics). */
  setModel(model: string): void;
}

/** Resolves after `ms` (at once for 0); rejects with the reason when cancelled first (its timer cleared). */
export function sleep(ms: number, cancel: Cancellation): Promise<void> {
  if (cancel.aborted) return Promise.reject(cancel.reason);
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      resolve();
    }, ms);
    const off = cancel.onAbort((reason) => {
      clearTimeout(timer);
      reject(reason);
    });
  });
}

/** Never resolves; rejects when cancelled (a stalled upstream). */
export function waitForever(cancel: Cancellation): Promise<never> {
  return new Promise((_, reject) => {
    cancel.onAbort(reject);
  });
}

/** Writes `text` and, when the socket buffer is full, waits for it to drain (or for the cancellation). */
export async function writeChunk(res: ServerResponse, text: string, cancel: Cancellation): Promise<void> {
  if (cancel.aborted) throw cancel.reason;
  if (res.write(text)) return;
  await new Promise<void>((resolve, reject) => {
    const onDrain = () => {
      off();
      resolve();
    };
    const off = cancel.onAbort((reason) => {
      res.off("drain", onDrain);
      reject(reason);
    });
    res.once("drain", onDrain);
  });
}

/** vLLM's `_check_model`: 404 with `param: "model"` for a model it does not serve; none given means
 * the first that serves this API. */
export function findModel(
  opts: SimulatorOptions,
  model: unknown,
  kind: "chat" | "embeddings" | "transcription",
): SimulatedModel {
  if (model !== undefined && model !== null && typeof model !== "string") {
    throw new SimulatorHttpError(400, "model: Input should be a valid string", "model", "Bad Request");
  }
  const serves = (m: SimulatedModel) => m.kind === kind || (m.kind === "both" && kind !== "transcription");
  const found = typeof model === "string" ? opts.models.find((m) => m.id === model) : opts.models.find(serves);
  if (!found) {
    throw new SimulatorHttpError(404, `The model \`${String(model)}\` does not exist.`, "model", "NotFoundError");
  }
  if (!serves(found)) {
    const apis = { chat: "Chat Completions API", embeddings: "Embeddings API", transcription: "Transcriptions API" };
    const api = apis[kind];
    throw new SimulatorHttpError(400, `The model does not support ${api}`, null, "BadRequestError");
  }
  return found;
}
