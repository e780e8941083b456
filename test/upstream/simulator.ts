import { EventEmitter } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { handleTranscription, readFormBody } from "./audio.js";
import { handleChat } from "./chat.js";
import { Cancellation, type RequestContext } from "./context.js";
import { handleEmbeddings } from "./embeddings.js";
import { readJsonBody, SimulatorHttpError, sendJson, vllmErrorBody } from "./http.js";
import { emptyModelMetrics, type ModelMetrics, renderMetrics } from "./metrics.js";
import { handleTeiRerank, handleVllmRerank, teiInfo } from "./rerank.js";
import { randomId } from "./text.js";
import {
  defaultOptions,
  type SimulatorEvent,
  type SimulatorEventName,
  type SimulatorOptions,
  type SimulatorStats,
} from "./types.js";

export type { SimulatedModel, SimulatorEvent, SimulatorOptions, SimulatorStats } from "./types.js";

/**
 * A vLLM-compatible upstream (the OpenAI-compatible server of `vllm serve`) for tests, benchmarks and local
 * development: raw node:http (keep-alive, TCP_NODELAY, no request timeout), deterministic output, latency and
 * failures configurable per instance and changeable while it runs.
 */
export interface Simulator {
  /** `http://127.0.0.1:PORT` (no trailing slash, no `/v1`). */
  readonly url: string;
  readonly port: number;
  /** Live counters; see `SimulatorStats`. */
  readonly stats: SimulatorStats;
  /** Emits `request`, `completed` and `cancelled` with a `SimulatorEvent`. */
  readonly events: EventEmitter;
  /** The options in force now. */
  readonly options: Readonly<SimulatorOptions>;
  /** Changes behaviour for requests that arrive from now on (a request keeps the options it arrived with). */
  setOptions(partial: Partial<SimulatorOptions>): void;
  /** Back to the options given at start; counters and last requests zeroed (live gauges kept). */
  reset(): void;
  /** The next event of that name (matching `filter`), or a rejection after `timeoutMs`. Call it before acting. */
  waitFor(
    name: SimulatorEventName,
    timeoutMs?: number,
    filter?: (e: SimulatorEvent) => boolean,
  ): Promise<SimulatorEvent>;
  /** Resolves once `condition()` holds (checked every 5 ms), rejects after `timeoutMs`. */
  waitUntil(condition: () => boolean, timeoutMs?: number): Promise<void>;
  /** Stops at once, like a killed process: open connections and streams are cut (not counted as cancelled). */
  close(): Promise<void>;
}

const ROUTES: Record<string, "GET" | "POST"> = {
  "/health": "GET",
  "/metrics": "GET",
  "/version": "GET",
  "/v1/models": "GET",
  "/v1/chat/completions": "POST",
  "/v1/embeddings": "POST",
  // Rerank: vLLM's Cohere-shaped route, and TEI's own route and model info.
  "/v2/rerank": "POST",
  "/rerank": "POST",
  "/info": "GET",
  "/v1/audio/transcriptions": "POST",
};

/** vLLM's `--api-key` check: `Authorization: Bearer <key>` (scheme case-insensitive). */
function authorized(req: IncomingMessage, key: string): boolean {
  const [scheme, ...rest] = (req.headers.authorization ?? "").split(" ");
  return scheme?.toLowerCase() === "bearer" && rest.join(" ") === key;
}

function zeroStats(s: SimulatorStats): void {
  s.requests = {};
  s.completed = 0;
  s.cancelled = 0;
  s.failed = 0;
  s.lastRequest = {};
  s.lastHeaders = {};
}

export async function startSimulator(initial: Partial<SimulatorOptions> = {}): Promise<Simulator> {
  const start: SimulatorOptions = { ...defaultOptions(), ...initial };
  let opts: SimulatorOptions = { ...start };
  const stats: SimulatorStats = {
    requests: {},
    inFlight: 0,
    running: 0,
    waiting: 0,
    completed: 0,
    cancelled: 0,
    failed: 0,
    lastRequest: {},
    lastHeaders: {},
  };
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const metrics = new Map<string, ModelMetrics>();
  const metricsFor = (model: string) => {
    const found = metrics.get(model);
    if (found) return found;
    const m = emptyModelMetrics();
    metrics.set(model, m);
    return m;
  };
  const active = new Set<Cancellation>();
  const queue: (() => void)[] = [];
  let closing = false;

  function acquireSlot(model: string, cancel: Cancellation): Promise<() => void> {
    const m = metricsFor(model);
    const grant = () => {
      stats.running++;
      m.running++;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        stats.running--;
        m.running--;
        queue.shift()?.();
      };
    };
    if (cancel.aborted) return Promise.reject(cancel.reason);
    if (stats.running < opts.maxNumSeqs) return Promise.resolve(grant());
    return new Promise((resolve, reject) => {
      stats.waiting++;
      m.waiting++;
      const leaveQueue = () => {
        stats.waiting--;
        m.waiting--;
      };
      const entry = () => {
        off();
        leaveQueue();
        resolve(grant());
      };
      const off = cancel.onAbort((reason) => {
        const i = queue.indexOf(entry);
        if (i >= 0) queue.splice(i, 1);
        leaveQueue();
        reject(reason);
      });
      queue.push(entry);
    });
  }

  async function generation(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    requestId: string,
    o: SimulatorOptions,
    handler: (ctx: RequestContext, body: unknown) => Promise<void>,
    readBody: (req: IncomingMessage) => Promise<unknown> = readJsonBody,
  ): Promise<void> {
    const cancel = new Cancellation();
    active.add(cancel);
    stats.inFlight++;
    let model: string | undefined;
    const emit = (name: SimulatorEventName) =>
      events.emit(name, { name, requestId, path, model, at: performance.now() } satisfies SimulatorEvent);
    res.on("close", () => {
      stats.inFlight--;
      active.delete(cancel);
      if (res.writableFinished) {
        stats.completed++;
        emit("completed");
        return;
      }
      if (!closing) {
        stats.cancelled++;
        emit("cancelled");
      }
      cancel.abort(new Error("the client went away"));
    });
    const ctx: RequestContext = {
      res,
      opts: o,
      cancel,
      requestId,
      acquireSlot: (m) => acquireSlot(m, cancel),
      recordDone: (m, prompt, completion, reason) => {
        const mm = metricsFor(m);
        mm.promptTokens += prompt;
        mm.generationTokens += completion;
        mm.success[reason] = (mm.success[reason] ?? 0) + 1;
      },
      setModel: (m) => {
        model = m;
      },
    };
    try {
      const body = await readBody(req);
      stats.lastRequest[path] = body;
      stats.lastHeaders[path] = req.headers;
      const named = (body as { model?: unknown } | null)?.model;
      if (typeof named === "string") model = named;
      emit("request");
      if (o.failureRate > 0 && Math.random() < o.failureRate) {
        stats.failed++;
        const headers: Record<string, string> = {};
        if (o.failureRetryAfterS !== null) headers["retry-after"] = String(o.failureRetryAfterS);
        const message = `Simulated upstream failure (status ${o.failureStatus})`;
        sendJson(res, o.failureStatus, vllmErrorBody(o.errorShape, o.failureStatus, message), headers);
        return;
      }
      await handler(ctx, body);
    } catch (err) {
      if (cancel.aborted) return;
      if (err instanceof SimulatorHttpError) {
        sendJson(res, err.status, vllmErrorBody(o.errorShape, err.status, err.message, err.param, err.type));
      } else if (!res.headersSent) {
        sendJson(res, 500, vllmErrorBody(o.errorShape, 500, String(err)));
      } else {
        res.destroy(err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  function models(o: SimulatorOptions): unknown {
    const created = Math.floor(Date.now() / 1000);
    const data = o.models.map((m) => ({
      id: m.id,
      object: "model",
      created,
      owned_by: "vllm",
      root: m.root ?? m.id,
      parent: null,
      max_model_len: m.maxModelLen,
      permission: [
        {
          id: `modelperm-${randomId()}`,
          object: "model_permission",
          created,
          allow_create_engine: false,
          allow_sampling: true,
          allow_logprobs: true,
          allow_search_indices: false,
          allow_view: true,
          allow_fine_tuning: false,
          organization: "*",
          group: null,
          is_blocking: false,
        },
      ],
    }));
    return { object: "list", data };
  }

  function metricsText(o: SimulatorOptions): string {
    const all = new Map<string, ModelMetrics>();
    for (const m of o.models) all.set(m.id, metricsFor(m.id));
    for (const [id, m] of metrics) all.set(id, m);
    return renderMetrics(all, o.maxNumSeqs);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const o = opts;
    const path = (req.url ?? "/").split("?", 1)[0] ?? "/";
    stats.requests[path] = (stats.requests[path] ?? 0) + 1;
    const given = req.headers["x-request-id"];
    const requestId = typeof given === "string" && given !== "" ? given : randomId();
    res.setHeader("x-request-id", requestId);
    res.setHeader("server", "uvicorn");
    if (path.startsWith("/v1") && o.apiKey !== null && !authorized(req, o.apiKey)) {
      sendJson(res, 401, { error: "Unauthorized" });
      return;
    }
    const method = ROUTES[path];
    if (!method) return sendJson(res, 404, { detail: "Not Found" });
    if (req.method !== method) return sendJson(res, 405, { detail: "Method Not Allowed" }, { allow: method });
    switch (path) {
      case "/health":
        res.writeHead(o.healthy ? 200 : 503, { "content-length": 0 });
        res.end();
        return;
      case "/metrics": {
        const text = metricsText(o);
        res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
        res.end(text);
        return;
      }
      case "/version":
        return sendJson(res, 200, { version: "0.11.0" });
      case "/v1/models":
        return sendJson(res, 200, models(o));
      case "/v1/chat/completions":
        return generation(req, res, path, requestId, o, handleChat);
      case "/v2/rerank":
        return generation(req, res, path, requestId, o, handleVllmRerank);
      case "/rerank":
        return generation(req, res, path, requestId, o, handleTeiRerank);
      case "/info": {
        const info = teiInfo(o);
        return info ? sendJson(res, 200, info) : sendJson(res, 404, { detail: "Not Found" });
      }
      case "/v1/audio/transcriptions":
        return generation(req, res, path, requestId, o, handleTranscription, readFormBody);
      default:
        return generation(req, res, path, requestId, o, handleEmbeddings);
    }
  }

  const server = createServer({ keepAlive: true, noDelay: true, requestTimeout: 0 }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, vllmErrorBody(opts.errorShape, 500, String(err)));
      else res.destroy();
    });
  });
  // Longer than the 60 s idle timeouts proxies commonly use, so that the client, not us, closes idle sockets.
  server.keepAliveTimeout = 75_000;
  server.headersTimeout = 76_000;
  server.on("connection", (socket) => socket.setNoDelay(true));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(start.port, start.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://${start.host}:${port}`,
    port,
    stats,
    events,
    get options() {
      return opts;
    },
    setOptions(partial) {
      opts = { ...opts, ...partial };
    },
    reset() {
      opts = { ...start };
      zeroStats(stats);
      for (const m of metrics.values()) {
        m.promptTokens = 0;
        m.generationTokens = 0;
        m.success = {};
      }
    },
    waitFor(name, timeoutMs = 5_000, filter) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          events.off(name, on);
          reject(new Error(`simulator: no '${name}' event within ${timeoutMs} ms`));
        }, timeoutMs);
        const on = (e: SimulatorEvent) => {
          if (filter && !filter(e)) return;
          clearTimeout(timer);
          events.off(name, on);
          resolve(e);
        };
        events.on(name, on);
      });
    },
    async waitUntil(condition, timeoutMs = 5_000) {
      const deadline = performance.now() + timeoutMs;
      while (!condition()) {
        if (performance.now() > deadline) throw new Error(`simulator: condition not met within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    async close() {
      if (closing) return;
      closing = true;
      for (const c of active) c.abort(new Error("simulator closed"));
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
