import { createParser, type EventSourceMessage } from "eventsource-parser";
import type { Dispatcher } from "undici";

/** Where a stream is when it fails: decides the timeout phase reported. */
export type StreamPhase = "headers" | "first_token" | "idle";

/** Why the stream aborted its own request (a timer of ours), if it did. */
export type StreamAbortReason = "total" | "first_token" | "idle" | undefined;

export interface SseStreamOptions {
  /** Issues the upstream request, driven by `handler` (undici's `dispatch`). */
  dispatch(handler: Dispatcher.DispatchHandler): void;
  /** The caller's cancellation: aborts the upstream request (frees the model server's slot). */
  signal?: AbortSignal;
  /** The whole exchange. */
  totalMs: number;
  /** Until the first event after the headers. */
  firstTokenMs: number;
  /**
   * Longest silence after the first event (`: ping` comments count as life). A timer of ours, not undici's
   * bodyTimeout, which runs from the headers: it would cut a first token that takes longer than this but comes
   * within `firstTokenMs` (a queued or long prompt on vLLM). Give undici no body timeout.
   */
  idleMs: number;
  /** Turns whatever went wrong into the client's error (`own`: which of our timers aborted, if one did). */
  fail(err: unknown, phase: StreamPhase, own: StreamAbortReason): Error;
  /** A non-2xx answer, read whole. */
  httpFailure(status: number, text: string, retryAfter?: string | string[]): Error;
  /** An `{"error":…}` event inside a 200 stream (the parsed body), or undefined when `data` is not one. */
  errorEvent(data: string): Error | undefined;
}

/** TextDecoder options of every body chunk, allocated once (a chunk can split a UTF-8 sequence). */
const DECODE_STREAM = { stream: true } as const;

/** Events held before the upstream socket is paused (back-pressure towards the model server). */
const HIGH_WATER = 64;

/**
 * The data of each Server-Sent Event of an upstream answer, as an async iterator fed straight by undici's dispatch
 * handler: no Readable body stream, no AbortController, one promise per event on the hot path. Comments (`: ping`)
 * are skipped, `[DONE]` ends the iteration; an error event, a timeout or an abort rejects the pending read after the
 * events before it were delivered. `return()` before the end aborts the upstream request.
 */
export function openSseStream(o: SseStreamOptions): AsyncIterableIterator<string> {
  const queue: string[] = [];
  let error: Error | undefined;
  let waiter: { resolve: (r: IteratorResult<string>) => void; reject: (e: Error) => void } | undefined;
  let phase: StreamPhase = "headers";
  let sawDone = false;
  let bodyEnded = false;
  let over = false;
  let controller: Dispatcher.DispatchController | undefined;
  /** Set once the request is to be aborted (before a connection was assigned, it aborts when one is). */
  let aborting = false;
  let own: StreamAbortReason;
  let reported = false;
  let status = 0;
  let retryAfter: string | string[] | undefined;
  let errorBody: Buffer[] | undefined;

  const totalTimer = setTimeout(() => abortWith("total"), o.totalMs);
  let firstTimer: NodeJS.Timeout | undefined;
  /** Armed at the first event, refreshed by every body chunk after it (one timer per stream, no allocation). */
  let idleTimer: NodeJS.Timeout | undefined;
  const onAbort = () => abortWith(undefined, o.signal?.reason);

  function finish(): void {
    if (over) return;
    over = true;
    clearTimeout(totalTimer);
    clearTimeout(firstTimer);
    clearTimeout(idleTimer);
    o.signal?.removeEventListener("abort", onAbort);
  }

  function onIdle(): void {
    // Paused by us (the consumer is behind): the upstream's silence is ours, not its.
    if (controller?.paused) idleTimer?.refresh();
    else abortWith("idle");
  }

  /** Aborts the upstream request; `reason`: one of our timers, else the caller's cancellation. */
  function abortWith(reason: StreamAbortReason, cause?: unknown): void {
    if (aborting) return;
    aborting = true;
    own = reason;
    const err = reason ? new Error(`upstream ${reason} timeout`) : (cause ?? new Error("aborted"));
    controller?.abort(err as Error);
    // Not connected yet, or already answered: report now (undici will not call back before a connection).
    if (!controller || bodyEnded) fail(err);
  }

  function fail(err: unknown): void {
    if (reported) return;
    if (!error) error = o.fail(err, phase, own);
    settle();
  }

  const parser = createParser({
    onEvent(ev: EventSourceMessage) {
      if (sawDone || error) return;
      if (ev.data === "[DONE]") {
        sawDone = true;
        return;
      }
      // vLLM's error events start so; any other event without choices is parsed to tell (a Python server's
      // `json.dumps` writes `{"object": "error", …}`, with spaces, or the error key not first).
      if (ev.data.startsWith('{"error"') || ev.data.startsWith('{"object":"error"') || !ev.data.includes('"choices"')) {
        const e = o.errorEvent(ev.data);
        if (e) {
          error = e;
          return;
        }
      }
      queue.push(ev.data);
    },
  });
  const decoder = new TextDecoder();

  function settle(): void {
    if (!waiter) return;
    const w = waiter;
    if (queue.length > 0) {
      waiter = undefined;
      if (phase !== "idle") {
        phase = "idle";
        clearTimeout(firstTimer);
      }
      w.resolve({ done: false, value: queue.shift() as string });
      if (controller?.paused && queue.length < HIGH_WATER / 2) controller.resume();
    } else if (error) {
      waiter = undefined;
      const e = error;
      if (!over) {
        finish();
        if (!sawDone && !bodyEnded && !aborting) {
          aborting = true;
          controller?.abort(e);
        }
      }
      queue.length = 0;
      error = undefined;
      sawDone = true; // reported once; later reads end
      reported = true;
      w.reject(e);
    } else if (sawDone || bodyEnded) {
      waiter = undefined;
      // After [DONE] the body is read to its end by itself (keep-alive); timers stop now.
      finish();
      if (sawDone) w.resolve({ done: true, value: undefined });
      else w.reject(o.fail(new ProtocolEnd(), phase, own));
    }
  }

  if (o.signal?.aborted) onAbort();
  else {
    o.signal?.addEventListener("abort", onAbort, { once: true });
    o.dispatch({
      onRequestStart(c) {
        controller = c;
        if (aborting) c.abort(new Error("aborted"));
      },
      onResponseStart(_c, statusCode, headers) {
        status = statusCode;
        if (statusCode < 200 || statusCode >= 300) {
          retryAfter = headers["retry-after"];
          errorBody = [];
          return;
        }
        if (over) return;
        phase = "first_token";
        firstTimer = setTimeout(() => {
          if (phase === "first_token") abortWith("first_token");
        }, o.firstTokenMs);
      },
      onResponseData(c, chunk) {
        if (errorBody) {
          errorBody.push(chunk);
          return;
        }
        parser.feed(decoder.decode(chunk, DECODE_STREAM));
        if (idleTimer) idleTimer.refresh();
        else if (queue.length > 0 && !over) idleTimer = setTimeout(onIdle, o.idleMs);
        if (queue.length >= HIGH_WATER && !c.paused) c.pause();
        settle();
      },
      onResponseEnd() {
        bodyEnded = true;
        if (errorBody && !error && !reported) {
          error = o.httpFailure(status, Buffer.concat(errorBody).toString(), retryAfter);
        }
        settle();
      },
      onResponseError(_c, err) {
        bodyEnded = true;
        fail(err);
      },
    });
  }

  const it: AsyncIterableIterator<string> = {
    next() {
      if (waiter) return Promise.reject(new Error("sse stream: concurrent next()"));
      if (over && queue.length === 0 && !error) return Promise.resolve({ done: true, value: undefined });
      return new Promise<IteratorResult<string>>((resolve, reject) => {
        waiter = { resolve, reject };
        settle();
      });
    },
    async return() {
      if (!over) {
        finish();
        // Leaving early (consumer stopped, client gone) must free the upstream slot now.
        if (!sawDone && !bodyEnded && !aborting) {
          aborting = true;
          controller?.abort(new Error("aborted"));
        }
      }
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return it;
    },
  };
  return it;
}

/** The body ended without `[DONE]`. */
export class ProtocolEnd extends Error {
  constructor() {
    super("upstream stream ended without [DONE]");
    this.name = "ProtocolEnd";
  }
}
