import type { ServerResponse } from "node:http";
import type { Http2ServerResponse } from "node:http2";
import type { FastifyInstance, FastifyReply } from "fastify";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** What the limiter decided for one request: admitted, refused, or admitted/refused by its outage policy. */
export type LimiterOutcome = "allowed" | "refused" | "degraded_open" | "degraded_closed" | "degraded_local";

/** One finished inference call (unary or stream). */
export interface InferenceRecord {
  /** The model's registry name (never a name the caller made up: unknown models are "unknown"). */
  model: string;
  /** "chat.completions", "embeddings", … */
  endpoint: string;
  /** "ok", or the error's code name ("unavailable", "resource_exhausted", …). */
  status: string;
  seconds: number;
  /** Streams: time until the first token reached the client. */
  ttftSeconds?: number;
  promptTokens?: number;
  completionTokens?: number;
}

/** A provider's live state as the router sees it (ProviderRouter.snapshot() fits). */
export interface ProviderGaugeState {
  id: string;
  inFlight: number;
  healthy: boolean;
}

/** The platform's Prometheus instruments, over one registry of its own (never prom-client's global one). */
export interface Metrics {
  readonly registry: Registry;
  /** The text exposition format's content type, for the `content-type` of `/metrics`. */
  readonly contentType: string;
  /** The registry in Prometheus text format. */
  text(): Promise<string>;
  readonly http: {
    /** Adds the request hooks to a Fastify instance; call before registering routes and other hooks. */
    instrument(app: FastifyInstance): void;
    observe(method: string, route: string, status: string, seconds: number): void;
  };
  readonly inference: { record(r: InferenceRecord): void };
  /**
   * Provider gauges are read from this function at scrape time (once per scrape for both gauges). When it fails (the
   * registry unreachable), the gauges show no provider for that scrape.
   */
  setProviderSnapshot(fn: () => readonly ProviderGaugeState[] | Promise<readonly ProviderGaugeState[]>): void;
  readonly limiter: { decision(outcome: LimiterOutcome): void };
  readonly usage: {
    /** Usage records accepted into the buffer. */
    recorded(count?: number): void;
    flushFailure(): void;
    /** The buffer's depth is read from this function at scrape time. */
    setDepthSource(fn: () => number): void;
    /** Budget leases this process holds (budget-leases.ts), read at scrape time. */
    setLeaseSource(fn: () => number): void;
  };
}

export interface MetricsOptions {
  /** Process metrics (CPU, memory, event loop, GC); off in unit tests that only look at our own instruments. */
  defaultMetrics?: boolean;
  /** Distinct model label values kept at most; further models are counted as "other" (bounded cardinality). */
  maxModels?: number;
}

const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const INFERENCE_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300];
const TTFT_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30];
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
const LIMITER_OUTCOMES: readonly LimiterOutcome[] = [
  "allowed",
  "refused",
  "degraded_open",
  "degraded_closed",
  "degraded_local",
];

type Child = { inc(value?: number): void };
type RawResponse = (ServerResponse | Http2ServerResponse) & { [kReply]?: FastifyReply };
type CountedReply = FastifyReply & { [kCounted]?: true };

const kReply = Symbol("passerelle.metrics.reply");
const kCounted = Symbol("passerelle.metrics.counted");

/** Children bound to their labels, created once per label set (the hot path then only increments). */
function cache<T>(make: (key: string) => T): (key: string) => T {
  const map = new Map<string, T>();
  return (key) => {
    let v = map.get(key);
    if (v === undefined) {
      v = make(key);
      map.set(key, v);
    }
    return v;
  };
}

export function createMetrics(opts: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const maxModels = opts.maxModels ?? 500;

  const httpRequests = new Counter({
    name: "passerelle_http_requests_total",
    help: "HTTP requests answered, by method, route pattern and status (499: the client left first).",
    labelNames: ["method", "route", "status"] as const,
    registers,
  });
  const httpDuration = new Histogram({
    name: "passerelle_http_request_duration_seconds",
    help: "HTTP request duration until the response ended, by method and route pattern.",
    labelNames: ["method", "route"] as const,
    buckets: HTTP_BUCKETS,
    registers,
  });
  const inferenceRequests = new Counter({
    name: "passerelle_inference_requests_total",
    help: "Inference calls by model, endpoint and outcome (ok or an error code name).",
    labelNames: ["model", "endpoint", "status"] as const,
    registers,
  });
  const inferenceDuration = new Histogram({
    name: "passerelle_inference_duration_seconds",
    help: "Inference call duration, by model and endpoint.",
    labelNames: ["model", "endpoint"] as const,
    buckets: INFERENCE_BUCKETS,
    registers,
  });
  const ttft = new Histogram({
    name: "passerelle_inference_time_to_first_token_seconds",
    help: "Streaming: time until the first token, by model.",
    labelNames: ["model"] as const,
    buckets: TTFT_BUCKETS,
    registers,
  });
  const tokens = new Counter({
    name: "passerelle_inference_tokens_total",
    help: "Tokens processed, by model and kind (prompt, completion).",
    labelNames: ["model", "kind"] as const,
    registers,
  });

  let providerSnapshot: () => readonly ProviderGaugeState[] | Promise<readonly ProviderGaugeState[]> = () => [];
  // A scrape starts every metric's collect() at once (prom-client): both gauges share the read in flight (one
  // registry query), and the next scrape reads afresh.
  let reading: Promise<readonly ProviderGaugeState[]> | undefined;
  const readProviders = (): Promise<readonly ProviderGaugeState[]> => {
    reading ??= (async () => {
      try {
        return await providerSnapshot();
      } catch {
        return [];
      }
    })().finally(() => {
      reading = undefined;
    });
    return reading;
  };
  // Filled at scrape time; a provider that is gone disappears from the output.
  new Gauge({
    name: "passerelle_provider_in_flight",
    help: "Requests in flight per provider, as this process sees them.",
    labelNames: ["provider"] as const,
    registers,
    async collect() {
      const providers = await readProviders();
      this.reset();
      for (const p of providers) this.set({ provider: p.id }, p.inFlight);
    },
  });
  new Gauge({
    name: "passerelle_provider_healthy",
    help: "1 when the provider takes traffic, 0 while passive health has ejected it.",
    labelNames: ["provider"] as const,
    registers,
    async collect() {
      const providers = await readProviders();
      this.reset();
      for (const p of providers) this.set({ provider: p.id }, p.healthy ? 1 : 0);
    },
  });

  const limiterDecisions = new Counter({
    name: "passerelle_limiter_decisions_total",
    help: "Rate-limiter decisions: allowed, refused, or taken by the outage policy (degraded_*).",
    labelNames: ["outcome"] as const,
    registers,
  });
  const limiterChildren = new Map<LimiterOutcome, Child>(
    LIMITER_OUTCOMES.map((o) => [o, limiterDecisions.labels({ outcome: o })]),
  );
  // Every outcome is exposed from the start, at 0, so that rate() and ratios work from the first decision.
  for (const child of limiterChildren.values()) child.inc(0);

  /** A gauge read from a settable source at scrape time; a source that throws reads 0. */
  const sourcedGauge = (name: string, help: string) => {
    let source: () => number = () => 0;
    new Gauge({
      name,
      help,
      registers,
      collect() {
        try {
          this.set(source());
        } catch {
          this.set(0);
        }
      },
    });
    return (fn: () => number) => {
      source = fn;
    };
  };
  const setDepthSource = sourcedGauge(
    "passerelle_usage_buffer_depth",
    "Usage records waiting in the buffer for the next flush.",
  );
  const setLeaseSource = sourcedGauge(
    "passerelle_budget_leases",
    "Budget leases this process holds (admitting, or given back once their requests end).",
  );
  const usageFlushFailures = new Counter({
    name: "passerelle_usage_flush_failures_total",
    help: "Flushes of the usage buffer to the database that failed (the records are retried).",
    registers,
  });
  const usageRecords = new Counter({
    name: "passerelle_usage_records_total",
    help: "Usage records accepted into the buffer.",
    registers,
  });

  // Bounded cardinality: the first `maxModels` model names get a label of their own, the rest share "other".
  const models = new Set<string>();
  const modelLabel = (model: string) => {
    if (models.has(model)) return model;
    if (models.size >= maxModels) return "other";
    models.add(model);
    return model;
  };
  const split = (key: string) => key.split("\0") as [string, string, string];
  const inferenceCount = cache((key) => {
    const [model, endpoint, status] = split(key);
    return inferenceRequests.labels({ model, endpoint, status });
  });
  const inferenceTime = cache((key) => {
    const [model, endpoint] = split(key);
    return inferenceDuration.labels({ model, endpoint });
  });
  const perModel = cache((model) => ({
    ttft: ttft.labels({ model }),
    prompt: tokens.labels({ model, kind: "prompt" }),
    completion: tokens.labels({ model, kind: "completion" }),
  }));
  const httpCount = cache((key) => {
    const [method, route, status] = split(key);
    return httpRequests.labels({ method, route, status });
  });
  const httpTime = cache((key) => {
    const [method, route] = split(key);
    return httpDuration.labels({ method, route });
  });

  function observeHttp(method: string, route: string, status: string, seconds: number): void {
    const m = METHODS.has(method) ? method : "OTHER";
    httpCount(`${m}\0${route}\0${status}`).inc();
    httpTime(`${m}\0${route}`).observe(seconds);
  }

  function observeReply(reply: CountedReply, status: string): void {
    if (reply[kCounted]) return;
    reply[kCounted] = true;
    observeHttp(reply.request.method, reply.request.routeOptions.url ?? "unmatched", status, reply.elapsedTime / 1000);
  }

  // A response that never finished (the client left, or a hijacked stream was cut) gets no onResponse: counted as
  // 499 when its raw response closes. Finished ones, hijacked SSE streams included, are counted by onResponse,
  // which runs on 'finish', before 'close'.
  function onRawClose(this: RawResponse): void {
    const reply = this[kReply];
    if (reply) observeReply(reply, "499");
  }

  return {
    registry,
    contentType: registry.contentType,
    text: () => registry.metrics(),
    http: {
      instrument(app) {
        app.addHook("onRequest", (_req, reply, done) => {
          const raw = reply.raw as RawResponse;
          raw[kReply] = reply;
          raw.once("close", onRawClose);
          done();
        });
        app.addHook("onResponse", (_req, reply, done) => {
          observeReply(reply, String(reply.statusCode));
          done();
        });
      },
      observe: observeHttp,
    },
    inference: {
      record(r) {
        const model = modelLabel(r.model);
        inferenceCount(`${model}\0${r.endpoint}\0${r.status}`).inc();
        inferenceTime(`${model}\0${r.endpoint}`).observe(r.seconds);
        const m = perModel(model);
        if (r.ttftSeconds !== undefined) m.ttft.observe(r.ttftSeconds);
        if (r.promptTokens) m.prompt.inc(r.promptTokens);
        if (r.completionTokens) m.completion.inc(r.completionTokens);
      },
    },
    setProviderSnapshot(fn) {
      providerSnapshot = fn;
    },
    limiter: {
      decision(outcome) {
        limiterChildren.get(outcome)?.inc();
      },
    },
    usage: {
      recorded(count = 1) {
        if (count > 0) usageRecords.inc(count);
      },
      flushFailure() {
        usageFlushFailures.inc();
      },
      setDepthSource,
      setLeaseSource,
    },
  };
}
