import { type Dispatcher, Pool } from "undici";
import type { TargetName } from "./common.js";

/**
 * The load generator: one undici Pool per target (keep-alive, TCP_NODELAY) and raw `dispatch` handlers, so that
 * the client's own cost is small and the same for every target. Timings are `performance.now()` in this process:
 * a request's latency runs from just before `dispatch` to the end of its body.
 */

export interface Target {
  name: TargetName;
  origin: string;
  pool: Pool;
  headers: Record<string, string>;
  /** The non-streaming request. */
  unaryBody: string;
  /** The streaming request (same messages). */
  streamBody: string;
}

/** The chat request every section sends (only `model` differs: the public name through Passerelle). */
export const PROMPT = [{ role: "user", content: "Bonjour ! Résume la situation du service public en une phrase." }];

export function makeTarget(name: TargetName, origin: string, apiKey: string, model: string): Target {
  return {
    name,
    origin,
    pool: new Pool(origin, {
      connections: 1100,
      pipelining: 1,
      keepAliveTimeout: 60_000,
      connect: { noDelay: true },
    }),
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    unaryBody: JSON.stringify({ model, messages: PROMPT }),
    streamBody: JSON.stringify({ model, messages: PROMPT, stream: true }),
  };
}

const PATH = "/v1/chat/completions";

/**
 * One request, its body read and dropped; calls back with the status (0 on a transport error) and the answer's
 * `server-timing` header, if it had one (read for every target alike, so that the client's work stays the same).
 */
function unary(t: Target, done: (status: number, bytes: number, timing: string | undefined) => void): void {
  let status = 0;
  let bytes = 0;
  let timing: string | undefined;
  t.pool.dispatch({ origin: t.origin, method: "POST", path: PATH, headers: t.headers, body: t.unaryBody }, {
    // (onRequestStart marks the handler as one of undici 7's controller API.)
    onRequestStart() {},
    onResponseStart(_c, s, headers) {
      status = s;
      const h = headers["server-timing"];
      timing = typeof h === "string" ? h : undefined;
    },
    onResponseData(_c, chunk) {
      bytes += chunk.length;
    },
    onResponseEnd() {
      done(status, bytes, timing);
    },
    onResponseError() {
      done(0, bytes, undefined);
    },
  } satisfies Dispatcher.DispatchHandler);
}

/**
 * Where one answer's time went, by Passerelle's `server-timing` (bridge/rpc.ts): `upstream` (waiting on the model
 * server), `gateway` (from the request's arrival in Fastify to the answer's headers, less the upstream wait: auth,
 * limits, routing, mapping), and `outside`: the rest of the latency the client saw (the hops between the client and
 * the gateway, the HTTP parse, the answer's serialization and write).
 */
export interface LatencySplit {
  upstream: number[];
  gateway: number[];
  outside: number[];
}

const SERVER_TIMING = /upstream;dur=(\d+(?:\.\d+)?), gateway;dur=(\d+(?:\.\d+)?)/;

export interface LoadRun {
  /** Latencies (ms) of the 200 answers, in completion order. */
  latencies: number[];
  /** With `split`: the same answers' latencies split by their server-timing (answers without one are left out). */
  split?: LatencySplit;
  completed: number;
  errors: number;
  elapsedMs: number;
}

/**
 * A closed loop: `connections` virtual users, each sending its next request as soon as the previous one ended,
 * until `requests` were sent or `durationMs` passed.
 */
export function closedLoop(
  t: Target,
  opts: { connections: number; requests?: number; durationMs?: number; split?: boolean },
): Promise<LoadRun> {
  return new Promise((resolve) => {
    const latencies: number[] = [];
    const split: LatencySplit | undefined = opts.split ? { upstream: [], gateway: [], outside: [] } : undefined;
    let errors = 0;
    let issued = 0;
    let running = opts.connections;
    const started = performance.now();
    const deadline = opts.durationMs !== undefined ? started + opts.durationMs : Number.POSITIVE_INFINITY;
    const user = () => {
      if ((opts.requests !== undefined && issued >= opts.requests) || performance.now() >= deadline) {
        if (--running === 0) {
          resolve({
            latencies,
            split,
            completed: latencies.length + errors,
            errors,
            elapsedMs: performance.now() - started,
          });
        }
        return;
      }
      issued++;
      const t0 = performance.now();
      unary(t, (status, _bytes, timing) => {
        const ms = performance.now() - t0;
        if (status === 200) {
          latencies.push(ms);
          const m = split && timing ? SERVER_TIMING.exec(timing) : null;
          if (split && m) {
            const upstream = Number(m[1]);
            const gateway = Number(m[2]);
            split.upstream.push(upstream);
            split.gateway.push(gateway);
            split.outside.push(ms - upstream - gateway);
          }
        } else errors++;
        // Out of undici's parser callback before sending the next one.
        queueMicrotask(user);
      });
    };
    for (let i = 0; i < opts.connections; i++) user();
  });
}

/** What the client saw of one streamed request: raw body chunks with their arrival times, decoded later. */
export interface StreamRecord {
  target: TargetName;
  status: number;
  /** performance.now() just before dispatch. */
  start: number;
  /** Arrival time of each body chunk (one `onResponseData` call: one parsed piece of a socket read). */
  at: number[];
  chunks: Buffer[];
  end: number;
  error?: string;
}

/**
 * One streamed request. Records chunks and timestamps only: decoding and analysis wait until the whole batch is
 * over, so that the client does as little as possible while frames arrive.
 */
export function stream(t: Target, timeoutMs = 60_000): Promise<StreamRecord> {
  return new Promise((resolve) => {
    const rec: StreamRecord = { target: t.name, status: 0, start: performance.now(), at: [], chunks: [], end: 0 };
    let settled = false;
    const settle = (error?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      rec.end = performance.now();
      if (error) rec.error = error;
      resolve(rec);
    };
    let abort: ((reason: Error) => void) | undefined;
    const timer = setTimeout(() => {
      abort?.(new Error("bench timeout"));
      settle(`no end within ${timeoutMs} ms`);
    }, timeoutMs);
    t.pool.dispatch({ origin: t.origin, method: "POST", path: PATH, headers: t.headers, body: t.streamBody }, {
      onRequestStart(controller) {
        abort = (reason) => controller.abort(reason);
      },
      onResponseStart(_c, status) {
        rec.status = status;
      },
      onResponseData(_c, chunk) {
        rec.at.push(performance.now());
        rec.chunks.push(Buffer.from(chunk));
      },
      onResponseEnd() {
        settle();
      },
      onResponseError(_c, err) {
        settle(err.message);
      },
    } satisfies Dispatcher.DispatchHandler);
  });
}

/** `n` streams at once to one target; resolves when all have ended. */
export function streams(t: Target, n: number): Promise<StreamRecord[]> {
  return Promise.all(Array.from({ length: n }, () => stream(t)));
}

/** One unary request through `t`, as a sanity check before measuring: the answer's text; throws unless 200. */
export async function answerText(t: Target): Promise<string> {
  const res = await fetch(`${t.origin}${PATH}`, { method: "POST", headers: t.headers, body: t.unaryBody });
  const body = (await res.json()) as { choices?: { message?: { content?: string } }[] };
  if (res.status !== 200) throw new Error(`${t.origin} answered ${res.status}: ${JSON.stringify(body)}`);
  return body.choices?.[0]?.message?.content ?? "";
}
