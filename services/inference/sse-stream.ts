import { createParser, type EventSourceMessage } from "eventsource-parser";
import type { Dispatcher } from "undici";

/** Where a stream is when it fails: decides the timeout phase reported. */
export type StreamPhase = "headers" | "first_token" | "idle";

export interface SseStreamOptions {
  /** Issues the upstream request (with the stream's abort signal). */
  request(): Promise<Dispatcher.ResponseData>;
  /** Aborts the upstream request (frees the model server's slot). */
  abort(): void;
  /** Fires when the first event is late. */
  firstTokenMs: number;
  /** Aborts with the first-token reason. */
  onFirstTokenTimeout(): void;
  /** Turns whatever went wrong into the client's error (the error of a non-2xx answer included). */
  fail(err: unknown, phase: StreamPhase): Error;
  /** A non-2xx answer, read whole. */
  httpFailure(status: number, text: string, retryAfter?: string | string[]): Error;
  /** An `{"error":…}` event inside a 200 stream (the parsed body), or undefined when `data` is not one. */
  errorEvent(data: string): Error | undefined;
  /** Runs once when the stream is over, whichever way (timers, listeners). */
  cleanup(): void;
}

/** Events held before the upstream socket is paused (back-pressure towards the model server). */
const HIGH_WATER = 64;

/**
 * The data of each Server-Sent Event of an upstream answer, as an async iterator driven by the socket's `data`
 * events: one promise per event on the hot path (Node's Readable async iterator and a generator cost several).
 * Comments (`: ping`) are skipped, `[DONE]` ends the iteration; an error event, a timeout or an abort rejects the
 * pending read after the events before it were delivered. `return()` before the end aborts the upstream request.
 */
export function openSseStream(o: SseStreamOptions): AsyncIterableIterator<string> {
  const queue: string[] = [];
  let error: Error | undefined;
  let waiter: { resolve: (r: IteratorResult<string>) => void; reject: (e: Error) => void } | undefined;
  let phase: StreamPhase = "headers";
  let sawDone = false;
  let bodyEnded = false;
  let over = false;
  let body: Dispatcher.ResponseData["body"] | undefined;
  let firstTimer: NodeJS.Timeout | undefined;

  const finish = () => {
    if (over) return;
    over = true;
    clearTimeout(firstTimer);
    o.cleanup();
  };

  const parser = createParser({
    onEvent(ev: EventSourceMessage) {
      if (sawDone || error) return;
      if (ev.data === "[DONE]") {
        sawDone = true;
        return;
      }
      if (ev.data.startsWith('{"error"') || ev.data.startsWith('{"object":"error"')) {
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
      if (body?.isPaused() && queue.length < HIGH_WATER / 2) body.resume();
    } else if (error) {
      waiter = undefined;
      const e = error;
      if (!over) {
        finish();
        if (!sawDone && !bodyEnded) o.abort();
      }
      queue.length = 0;
      error = undefined;
      sawDone = true; // reported once; later reads end
      w.reject(e);
    } else if (sawDone || bodyEnded) {
      waiter = undefined;
      // After [DONE] the body is read to its end by itself (keep-alive); timers stop now.
      finish();
      if (sawDone) w.resolve({ done: true, value: undefined });
      else w.reject(o.fail(new ProtocolEnd(), phase));
    }
  }

  const failWith = (err: unknown) => {
    if (!error) error = o.fail(err, phase);
    settle();
  };

  o.request().then(
    async (res) => {
      if (res.statusCode < 200 || res.statusCode >= 300) {
        let text = "";
        try {
          text = await res.body.text();
        } catch {
          // the status says enough
        }
        error = o.httpFailure(res.statusCode, text, res.headers["retry-after"]);
        settle();
        return;
      }
      if (over) {
        res.body.destroy();
        return;
      }
      body = res.body;
      phase = "first_token";
      firstTimer = setTimeout(() => {
        if (phase === "first_token") o.onFirstTokenTimeout();
      }, o.firstTokenMs);
      body.on("data", (chunk: Buffer) => {
        parser.feed(decoder.decode(chunk, { stream: true }));
        if (queue.length >= HIGH_WATER) body?.pause();
        settle();
      });
      body.on("end", () => {
        bodyEnded = true;
        settle();
      });
      body.on("error", failWith);
    },
    (err: unknown) => failWith(err),
  );

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
        if (!sawDone && !bodyEnded) o.abort();
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
