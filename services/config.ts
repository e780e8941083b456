import os from "node:os";
import path from "node:path";

/** Settings of the core (and of the one-process platform). Only config.ts files read process.env. */
export interface CoreConfig {
  readonly httpHost: string;
  /** HTTP/1.1 port: REST bridge, Connect and gRPC-web. 0 picks a free port. */
  readonly httpPort: number;
  /** h2c port: gRPC (and Connect) over cleartext HTTP/2. 0 picks a free port. */
  readonly grpcPort: number;
  readonly dataDir: string;
  /** Real PostgreSQL when set; embedded PGlite under dataDir otherwise. */
  readonly databaseUrl: string | undefined;
  /** Real Redis when set; in-process store otherwise. */
  readonly redisUrl: string | undefined;
  readonly elasticsearchUrl: string | undefined;
  /** YAML file of models and providers created at start when missing (PASSERELLE_MODELS_FILE); the database wins after. */
  readonly modelsFile?: string;
  readonly bootstrap: {
    readonly email: string;
    readonly password: string | undefined;
    readonly key: string | undefined;
  };
  readonly auth: {
    /** Longest lifetime of an API key in days; undefined = unlimited. */
    readonly keyMaxLifetimeDays: number | undefined;
    /** Lifetime of a login session key in seconds. */
    readonly sessionTtlSeconds: number;
    /** How long a verified key stays in the per-process cache (revocations are pushed, this only bounds staleness of other changes). */
    readonly cacheTtlMs: number;
    readonly cacheMaxEntries: number;
    /** Failed logins per e-mail per 15 minutes before login is refused. */
    readonly maxFailedLogins: number;
  };
  readonly inference: {
    /** TCP connect timeout to a model upstream. */
    readonly connectTimeoutMs: number;
    /** Streaming: longest wait for the first token. */
    readonly firstTokenTimeoutMs: number;
    /** Streaming: longest silence between two chunks. */
    readonly idleTimeoutMs: number;
    /** Providers tried per request at most (retries happen only before the first byte reached the client). */
    readonly maxAttempts: number;
    /** Longest wait for a free slot when every provider of a model is at its max concurrency (then 503). */
    readonly queueTimeoutMs: number;
    /** Consecutive failures that eject a provider, and how long it rests before a /health probe. */
    readonly ejectAfterFailures: number;
    /** Share of failures (%) over a provider's recent outcomes that ejects it too; 100 = never (provider-router.ts). */
    readonly ejectErrorPercent: number;
    readonly cooldownMs: number;
    /**
     * Processes splitting each provider's max_concurrency: set by the core from `workers` (not read from the
     * environment here, so that an override of `workers` cannot disagree with it); absent = 1.
     */
    readonly workers?: number;
  };
  readonly embeddings: {
    /** Inputs per upstream call at most; larger requests are split (PASSERELLE_EMBEDDINGS_MAX_BATCH). */
    readonly maxBatch: number;
    /** Upstream calls of one request run at once at most (PASSERELLE_EMBEDDINGS_CONCURRENCY). */
    readonly concurrency: number;
  };
  /** Text recognition (services/ocr). */
  readonly ocr: {
    /** Pages one request may transcribe at most (PASSERELLE_OCR_MAX_PAGES, default 100); more → 400. */
    readonly maxPages: number;
    /** Pages of one request transcribed at once (PASSERELLE_OCR_CONCURRENCY, default 4). */
    readonly concurrency: number;
    /** Resolution PDF pages are rendered at (PASSERELLE_OCR_DPI, default 150). */
    readonly dpi: number;
    /** Worker threads rendering PDF pages off the event loop (PASSERELLE_OCR_RENDER_THREADS, default 2). */
    readonly renderThreads: number;
    /** Prompt tokens reserved per page image before the upstream counts them (PASSERELLE_OCR_IMAGE_TOKENS). */
    readonly imageTokensPerPage: number;
    /**
     * URL prefixes (`https://host/path/`) the gateway may fetch documents from (PASSERELLE_OCR_URL_ALLOWLIST,
     * comma-separated); empty = http(s) URLs are refused and only `data:` URLs and bytes are read.
     */
    readonly urlAllowlist: readonly string[];
  };
  /** Collections, ingestion and search (services/collections, services/search). */
  readonly rag: {
    /**
     * The embeddings model (name or alias) that embeds every chunk and query (PASSERELLE_RAG_EMBEDDINGS_MODEL); unset =
     * collections and search answer FailedPrecondition until an operator names one.
     */
    readonly embeddingsModel: string | undefined;
    /** Largest uploaded file, in bytes (PASSERELLE_RAG_MAX_FILE_BYTES, default 20 MiB); larger → 413. */
    readonly maxFileBytes: number;
    /** Parser worker threads (PASSERELLE_RAG_PARSER_THREADS, default 2). */
    readonly parserThreads: number;
    /** Chunks per embeddings call (PASSERELLE_RAG_EMBEDDINGS_BATCH, default 32). */
    readonly embeddingsBatch: number;
    /** Embeddings calls of one document in flight at once (PASSERELLE_RAG_EMBEDDINGS_CONCURRENCY, default 2). */
    readonly embeddingsConcurrency: number;
    /** Documents ingested at once per process (PASSERELLE_RAG_INGEST_CONCURRENCY, default 4); others wait, queued. */
    readonly ingestConcurrency: number;
    /**
     * The chat `search` tool's rewrite of the last user message, with `{prompt}` and `{chunks}`
     * (PASSERELLE_RAG_PROMPT_TEMPLATE; unset = services/inference/search-tool.ts's bilingual default).
     */
    readonly promptTemplate: string | undefined;
    /** Search on Elasticsearch instead of PostgreSQL when set (ELASTICSEARCH_URL). */
    readonly elasticsearchUrl: string | undefined;
  };
  /** Limits, budgets and usage (services/governance). */
  readonly governance: {
    /** When Redis fails or is slow: "fail-open", "fail-closed" or "local" (per-process limits) (PASSERELLE_LIMITS_REDIS_POLICY). */
    readonly limitsPolicy: "fail-open" | "fail-closed" | "local";
    /** Longest wait for Redis per decision before the policy applies (PASSERELLE_LIMITS_REDIS_TIMEOUT_MS). */
    readonly limitsTimeoutMs: number;
    /** Completion tokens reserved when a chat request sets no max_tokens (PASSERELLE_DEFAULT_MAX_TOKENS). */
    readonly defaultMaxTokens: number;
    /** Budgets admitted on per-process leases instead of one reservation per request (PASSERELLE_BUDGET_LEASES). */
    readonly budgetLeases: boolean;
    /**
     * With Redis limits: a call whose caller had ample room at its last decision is sent upstream while its
     * reservation is decided, and aborted if refused (PASSERELLE_FORWARD_EARLY, default on; governance/headroom.ts).
     */
    readonly forwardEarly: boolean;
  };
  /**
   * How long after its last use a cached key, model or budget owner is reloaded ahead of its cache expiry, off the
   * request path (services/platform/keep-warm.ts); 0 turns it off (PASSERELLE_CACHE_KEEP_WARM_SECONDS, default 600).
   */
  readonly cacheKeepWarmMs: number;
  /** Largest request body accepted, in bytes. */
  readonly bodyLimitBytes: number;
  /** Time given to in-flight requests and streams to finish on SIGTERM. */
  readonly shutdownGraceMs: number;
  /** One memory-reducing collection once started, before listening (PASSERELLE_COMPACT_AFTER_START, default on). */
  readonly compactAfterStart: boolean;
  /** Browser origins allowed by CORS; ["*"] allows any. */
  readonly corsOrigins: readonly string[];
  readonly logLevel: string;
  /** Run the REST bridge inside the core process (default true). */
  readonly bridgeEnabled: boolean;
  /**
   * Processes serving requests (PASSERELLE_WORKERS: a number, or "auto" = one per core). Above 1, `npm start` runs a
   * primary that prepares the database and forks that many workers sharing the ports; they share state through
   * PostgreSQL and Redis, so both DATABASE_URL and REDIS_URL are required.
   */
  readonly workers: number;
  /** Set by the primary in each worker (0-based): names the worker's own usage journal. */
  readonly workerIndex: number | undefined;
  /**
   * A separate listener serving only `GET /metrics` without auth, for scrapers inside the cluster
   * (PASSERELLE_METRICS_PORT; unset = none, 0 = any free port). `/metrics` on the HTTP port always needs a key.
   */
  readonly metrics: { readonly port: number | undefined; readonly host: string };
}

export class ConfigError extends Error {}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<CoreConfig> = {}): CoreConfig {
  const str = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v ? v : undefined;
  };
  const int = (name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number => {
    const raw = str(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
    }
    return n;
  };
  const bool = (name: string, fallback: boolean): boolean => {
    const raw = str(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (["1", "true", "yes", "on"].includes(raw)) return true;
    if (["0", "false", "no", "off"].includes(raw)) return false;
    throw new ConfigError(`${name} must be true or false, got "${raw}"`);
  };
  const oneOf = <T extends string>(name: string, values: readonly T[], fallback: T): T => {
    const raw = str(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (!(values as readonly string[]).includes(raw)) {
      throw new ConfigError(`${name} must be one of ${values.join(", ")}, got "${raw}"`);
    }
    return raw as T;
  };
  const bootstrapKey = str("PASSERELLE_BOOTSTRAP_ADMIN_KEY");
  if (bootstrapKey !== undefined && !/^sk-[A-Za-z0-9_-]{20,200}$/.test(bootstrapKey)) {
    throw new ConfigError("PASSERELLE_BOOTSTRAP_ADMIN_KEY must look like sk-… with at least 20 URL-safe characters");
  }
  const maxDays = str("PASSERELLE_AUTH_KEY_MAX_LIFETIME_DAYS");
  const config: CoreConfig = {
    httpHost: str("PASSERELLE_HTTP_HOST") ?? "0.0.0.0",
    httpPort: int("PASSERELLE_HTTP_PORT", 8080, 0, 65535),
    grpcPort: int("PASSERELLE_GRPC_PORT", 8081, 0, 65535),
    dataDir: path.resolve(str("PASSERELLE_DATA_DIR") ?? "./data"),
    databaseUrl: str("DATABASE_URL"),
    redisUrl: str("REDIS_URL"),
    elasticsearchUrl: str("ELASTICSEARCH_URL"),
    modelsFile: str("PASSERELLE_MODELS_FILE"),
    bootstrap: {
      email: (str("PASSERELLE_BOOTSTRAP_ADMIN_EMAIL") ?? "admin@passerelle.local").toLowerCase(),
      password: str("PASSERELLE_BOOTSTRAP_ADMIN_PASSWORD"),
      key: bootstrapKey,
    },
    auth: {
      keyMaxLifetimeDays: maxDays === undefined ? undefined : int("PASSERELLE_AUTH_KEY_MAX_LIFETIME_DAYS", 0, 1, 36500),
      sessionTtlSeconds: int("PASSERELLE_AUTH_SESSION_TTL_SECONDS", 3600, 60, 7 * 86400),
      cacheTtlMs: int("PASSERELLE_AUTH_CACHE_TTL_MS", 30_000, 0, 3_600_000),
      cacheMaxEntries: int("PASSERELLE_AUTH_CACHE_MAX_ENTRIES", 10_000, 1, 10_000_000),
      maxFailedLogins: int("PASSERELLE_AUTH_MAX_FAILED_LOGINS", 10, 1, 1000),
    },
    inference: {
      connectTimeoutMs: int("PASSERELLE_UPSTREAM_CONNECT_TIMEOUT_MS", 5_000, 1, 600_000),
      firstTokenTimeoutMs: int("PASSERELLE_UPSTREAM_FIRST_TOKEN_TIMEOUT_MS", 120_000, 1, 3_600_000),
      idleTimeoutMs: int("PASSERELLE_UPSTREAM_IDLE_TIMEOUT_MS", 60_000, 1, 3_600_000),
      maxAttempts: int("PASSERELLE_UPSTREAM_MAX_ATTEMPTS", 3, 1, 10),
      queueTimeoutMs: int("PASSERELLE_UPSTREAM_QUEUE_TIMEOUT_MS", 10_000, 0, 600_000),
      ejectAfterFailures: int("PASSERELLE_UPSTREAM_EJECT_AFTER_FAILURES", 5, 1, 1000),
      ejectErrorPercent: int("PASSERELLE_UPSTREAM_EJECT_ERROR_PERCENT", 40, 1, 100),
      cooldownMs: int("PASSERELLE_UPSTREAM_COOLDOWN_MS", 10_000, 100, 3_600_000),
    },
    embeddings: {
      maxBatch: int("PASSERELLE_EMBEDDINGS_MAX_BATCH", 64, 1, 100_000),
      concurrency: int("PASSERELLE_EMBEDDINGS_CONCURRENCY", 4, 1, 256),
    },
    ocr: {
      maxPages: int("PASSERELLE_OCR_MAX_PAGES", 100, 1, 10_000),
      concurrency: int("PASSERELLE_OCR_CONCURRENCY", 4, 1, 256),
      dpi: int("PASSERELLE_OCR_DPI", 150, 36, 600),
      renderThreads: int("PASSERELLE_OCR_RENDER_THREADS", 2, 1, 64),
      imageTokensPerPage: int("PASSERELLE_OCR_IMAGE_TOKENS", 2048, 0, 1_000_000),
      urlAllowlist: (str("PASSERELLE_OCR_URL_ALLOWLIST") ?? "")
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
    },
    rag: {
      embeddingsModel: str("PASSERELLE_RAG_EMBEDDINGS_MODEL"),
      maxFileBytes: int("PASSERELLE_RAG_MAX_FILE_BYTES", 20 * 1024 * 1024, 1, 1024 * 1024 * 1024),
      parserThreads: int("PASSERELLE_RAG_PARSER_THREADS", 2, 1, 64),
      embeddingsBatch: int("PASSERELLE_RAG_EMBEDDINGS_BATCH", 32, 1, 2048),
      embeddingsConcurrency: int("PASSERELLE_RAG_EMBEDDINGS_CONCURRENCY", 2, 1, 64),
      ingestConcurrency: int("PASSERELLE_RAG_INGEST_CONCURRENCY", 4, 1, 256),
      promptTemplate: env.PASSERELLE_RAG_PROMPT_TEMPLATE?.trim() ? env.PASSERELLE_RAG_PROMPT_TEMPLATE : undefined,
      elasticsearchUrl: str("ELASTICSEARCH_URL"),
    },
    governance: {
      limitsPolicy: oneOf("PASSERELLE_LIMITS_REDIS_POLICY", ["fail-open", "fail-closed", "local"] as const, "local"),
      limitsTimeoutMs: int("PASSERELLE_LIMITS_REDIS_TIMEOUT_MS", 250, 1, 5_000),
      defaultMaxTokens: int("PASSERELLE_DEFAULT_MAX_TOKENS", 1024, 1, 10_000_000),
      budgetLeases: bool("PASSERELLE_BUDGET_LEASES", true),
      forwardEarly: bool("PASSERELLE_FORWARD_EARLY", true),
    },
    cacheKeepWarmMs: int("PASSERELLE_CACHE_KEEP_WARM_SECONDS", 600, 0, 86_400) * 1000,
    bodyLimitBytes: int("PASSERELLE_BODY_LIMIT_BYTES", 8 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    shutdownGraceMs: int("PASSERELLE_SHUTDOWN_GRACE_MS", 10_000, 0, 600_000),
    compactAfterStart: bool("PASSERELLE_COMPACT_AFTER_START", true),
    corsOrigins: (str("PASSERELLE_CORS_ORIGINS") ?? "*")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
    logLevel: str("PASSERELLE_LOG_LEVEL") ?? str("LOG_LEVEL") ?? "info",
    bridgeEnabled: bool("PASSERELLE_BRIDGE_ENABLED", true),
    workers:
      str("PASSERELLE_WORKERS")?.toLowerCase() === "auto"
        ? os.availableParallelism()
        : int("PASSERELLE_WORKERS", 1, 1, 256),
    workerIndex: str("PASSERELLE_WORKER_INDEX") === undefined ? undefined : int("PASSERELLE_WORKER_INDEX", 0, 0, 255),
    metrics: {
      port: str("PASSERELLE_METRICS_PORT") === undefined ? undefined : int("PASSERELLE_METRICS_PORT", 0, 0, 65535),
      host: str("PASSERELLE_METRICS_HOST") ?? "127.0.0.1",
    },
    ...overrides,
  };
  const template = config.rag.promptTemplate;
  if (template !== undefined && !(template.includes("{prompt}") && template.includes("{chunks}"))) {
    throw new ConfigError("PASSERELLE_RAG_PROMPT_TEMPLATE must contain {prompt} and {chunks}");
  }
  for (const prefix of config.ocr.urlAllowlist) {
    if (!/^https?:\/\/[^/?#]+/i.test(prefix) || !URL.canParse(prefix)) {
      throw new ConfigError(`PASSERELLE_OCR_URL_ALLOWLIST entries must be http(s) URL prefixes, got "${prefix}"`);
    }
  }
  if (config.workers > 1 && !(config.databaseUrl && config.redisUrl)) {
    throw new ConfigError(
      "PASSERELLE_WORKERS above 1 needs DATABASE_URL and REDIS_URL: the workers share the database, the rate limits " +
        "and the caches' invalidations, which the embedded defaults keep inside one process",
    );
  }
  return Object.freeze(config);
}
