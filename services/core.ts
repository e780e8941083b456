import type { ConnectRouter, ConnectRouterOptions } from "@connectrpc/connect";
import type { Logger } from "pino";
import { AccountService } from "../gen/passerelle/accounts/v1/account_service_pb.js";
import { AudioService } from "../gen/passerelle/audio/v1/audio_service_pb.js";
import { CollectionService } from "../gen/passerelle/collections/v1/collection_service_pb.js";
import { EmbeddingsService } from "../gen/passerelle/embeddings/v1/embeddings_service_pb.js";
import { GovernanceService } from "../gen/passerelle/governance/v1/governance_service_pb.js";
import { InferenceService } from "../gen/passerelle/inference/v1/inference_service_pb.js";
import { ModelService } from "../gen/passerelle/models/v1/model_service_pb.js";
import { OcrService } from "../gen/passerelle/ocr/v1/ocr_service_pb.js";
import { RerankService } from "../gen/passerelle/rerank/v1/rerank_service_pb.js";
import { SearchService } from "../gen/passerelle/search/v1/search_service_pb.js";
import {
  type BootstrapResult,
  bootstrapAccounts,
  createAccountService,
  createAccountStore,
  createAuthenticator,
} from "./accounts/index.js";
import { setupAudio } from "./audio/index.js";
import { setupCollections } from "./collections/index.js";
import type { CoreConfig } from "./config.js";
import { setupEmbeddings } from "./embeddings/index.js";
import { createGovernanceService } from "./governance/governance-service.js";
import { type Governance, setupGovernance } from "./governance/index.js";
import { createLimitsView } from "./governance/limiter/index.js";
import { setupInference } from "./inference/index.js";
import { createModelStore, loadModelsFile, type ModelRegistry, setupModels } from "./models/index.js";
import { setupOcr } from "./ocr/index.js";
import type { Principal } from "./platform/context.js";
import { type Database, openDatabase } from "./platform/db/database.js";
import { bindService, createInProcessTransport, type ServiceBinding } from "./platform/in-process-transport.js";
import { createAuthInterceptor, createRequestContextInterceptor } from "./platform/interceptors.js";
import { createKv, type KvStore } from "./platform/kv/index.js";
import { createMetrics, type Metrics } from "./platform/metrics.js";
import { setupRerank } from "./rerank/index.js";
import { createSearchBackend } from "./search/index.js";

/** The services and what they stand on, independent of how they are served. */
export interface Core {
  readonly routes: (router: ConnectRouter) => void;
  /** The same services, for the in-process transport (platform/in-process-transport.ts). */
  readonly services: readonly ServiceBinding[];
  /** Options for every Connect router serving `routes` (interceptors, limits). */
  readonly routerOptions: ConnectRouterOptions;
  readonly db: Database;
  readonly kv: KvStore;
  readonly bootstrap: BootstrapResult;
  /** Model resolution for the inference domains (cached, invalidated on every registry write). */
  readonly modelRegistry: ModelRegistry;
  /** The Prometheus instruments of this core (its own registry). */
  readonly metrics: Metrics;
  /** Resolves an API key to its principal (Unauthenticated otherwise): for HTTP routes outside the RPCs (/metrics). */
  authenticate(token: string): Promise<Principal>;
  /** Readiness of the dependencies, for /health/ready. */
  checkReady(): Promise<{ database: boolean; kv: boolean }>;
  close(): Promise<void>;
}

const PUBLIC_METHODS = new Set([`${AccountService.typeName}/${AccountService.method.login.name}`]);
const EXPIRED_USER_METHODS = new Set([`${AccountService.typeName}/${AccountService.method.getMe.name}`]);

/** Read options of Connect's JSON serialization; `textDecoder` is honoured though the router's type omits it. */
const strictJson: ConnectRouterOptions["jsonOptions"] & { textDecoder: { decode(input?: Uint8Array): string } } = {
  ignoreUnknownFields: false,
  textDecoder: new TextDecoder("utf-8", { fatal: true }),
};

/**
 * The entities MikroORM maps, imported only when the ORM is loaded (database.ts): the serving path is plain SQL, and
 * a process that only serves never loads MikroORM.
 */
async function loadEntities() {
  const [accounts, models, governance] = await Promise.all([
    import("./accounts/entities.js"),
    import("./models/entities.js"),
    import("./governance/entities.js"),
  ]);
  return [...accounts.accountEntities, ...models.modelEntities, ...governance.governanceEntities];
}

export async function createCore(config: CoreConfig, logger: Logger): Promise<Core> {
  // An invalid models file fails the start before anything is opened.
  const modelSpecs = config.modelsFile ? await loadModelsFile(config.modelsFile) : undefined;
  const kv = await createKv(config.redisUrl);
  let db: Database;
  try {
    db = await openDatabase({
      url: config.databaseUrl,
      dataDir: config.dataDir,
      entities: loadEntities,
      logger,
    });
  } catch (err) {
    await kv.close();
    throw err;
  }
  const store = createAccountStore(db);
  const authenticator = await createAuthenticator({
    store,
    kv,
    logger,
    ttlMs: config.auth.cacheTtlMs,
    maxEntries: config.auth.cacheMaxEntries,
    keepWarmMs: config.cacheKeepWarmMs,
  });
  const bootstrap = await bootstrapAccounts(store, config.bootstrap, logger);
  const models = await setupModels({ db, kv, logger, specs: modelSpecs, keepWarmMs: config.cacheKeepWarmMs });
  const metrics = createMetrics();
  const governance: Governance = await setupGovernance({
    pool: db.pool,
    redisUrl: config.redisUrl,
    dataDir: config.dataDir,
    workerIndex: config.workerIndex,
    // The primary of a pool, or a single process started where a pool ran before: write what workers left.
    replayOthers: config.workerIndex === undefined,
    databaseUrl: config.databaseUrl,
    settings: { ...config.governance, cacheKeepWarmMs: config.cacheKeepWarmMs },
    logger,
    onDecision: (outcome) => metrics.limiter.decision(outcome),
    onFlushed: (n) => metrics.usage.recorded(n),
    onFlushFailure: () => metrics.usage.flushFailure(),
    onFinish: (input, outcome, seconds) =>
      metrics.inference.record({
        model: input.model.name,
        endpoint: input.endpoint,
        status: outcome.errorCode ?? "ok",
        seconds,
        ttftSeconds: outcome.ttftMs === undefined ? undefined : outcome.ttftMs / 1000,
        promptTokens: outcome.promptTokens,
        completionTokens: outcome.completionTokens,
      }),
  });
  metrics.usage.setDepthSource(() => governance.buffer.depth());
  metrics.usage.setLeaseSource(() => governance.budgetStore.leasesHeld().length);
  const modelStore = createModelStore(db);
  const accountService = createAccountService({
    store,
    authenticator,
    kv,
    logger,
    settings: {
      keyMaxLifetimeDays: config.auth.keyMaxLifetimeDays,
      sessionTtlSeconds: config.auth.sessionTtlSeconds,
      maxFailedLogins: config.auth.maxFailedLogins,
    },
    // GetMe's limits: the models the caller may use (registry) and where each limit stands (limiter).
    limitsView: createLimitsView({
      limiter: governance.limiter,
      models: {
        list: (page, roleId) => modelStore.listModels(page, { grantedTo: roleId }),
        limitsFor: async (name, p) => (await models.registry.resolveForUse(name, p)).limits,
      },
    }),
  });
  const { pool } = db;
  const collections = setupCollections({
    pool,
    backend: await createSearchBackend({ pool, elasticsearchUrl: config.rag.elasticsearchUrl, logger }),
    settings: config.rag,
    logger,
  });
  await collections.recover();
  collections.startSweep();
  const inference = setupInference({
    retrieve: collections.retrieve,
    searchTemplate: config.rag.promptTemplate,
    registry: models.registry,
    governor: governance.governor,
    defaultMaxTokens: config.governance.defaultMaxTokens,
    // Each worker routes on its own: max_concurrency is split between them (provider-router.ts, `workers`).
    settings: { ...config.inference, workers: config.workers },
  });
  // One small registry query per scrape (see providerStates).
  metrics.setProviderSnapshot(inference.providerStates);
  const embeddings = setupEmbeddings({ shared: inference, upstream: config.inference, settings: config.embeddings });
  const rerank = setupRerank({ shared: inference, upstream: config.inference });
  const audio = setupAudio({
    shared: inference,
    upstream: config.inference,
    maxFileBytes: config.rag.maxFileBytes,
    defaultMaxTokens: config.governance.defaultMaxTokens,
  });
  const ocr = setupOcr({
    shared: inference,
    upstream: config.inference,
    settings: config.ocr,
    maxFileBytes: config.rag.maxFileBytes,
    defaultMaxTokens: config.governance.defaultMaxTokens,
  });
  const routerOptions: ConnectRouterOptions = {
    interceptors: [
      createRequestContextInterceptor(logger),
      createAuthInterceptor({
        authenticate: (token) => authenticator.authenticate(token),
        publicMethods: PUBLIC_METHODS,
        expiredUserMethods: EXPIRED_USER_METHODS,
      }),
    ],
    // A document upload (CreateDocument) or an OCR request carries the whole file: room for the largest one plus
    // its fields, base64-encoded (Connect JSON bytes, or an OCR data: URL from a remote bridge).
    readMaxBytes: Math.max(config.bodyLimitBytes, Math.ceil(config.rag.maxFileBytes / 3) * 4 + 1024 * 1024),
    // JSON requests are read strictly, as the REST bodies are: Connect ignores unknown fields by default, which
    // also drops unknown enum names (a role created without the permission asked for); and bad UTF-8 would be
    // stored as U+FFFD. Both are InvalidArgument instead. (The binary format already rejects bad UTF-8.)
    jsonOptions: strictJson,
  };
  const services = [
    bindService(AccountService, accountService),
    bindService(CollectionService, collections.collectionService),
    bindService(SearchService, collections.searchService),
    bindService(ModelService, models.service),
    bindService(InferenceService, inference.service),
    bindService(EmbeddingsService, embeddings.service),
    bindService(RerankService, rerank.service),
    bindService(AudioService, audio.service),
    bindService(OcrService, ocr.service),
    bindService(
      GovernanceService,
      createGovernanceService({
        usageStore: governance.usageStore,
        budgetStore: governance.budgetStore,
        // SetBudget answers NotFound for a user or organization that does not exist.
        ownerExists: async (o) =>
          Boolean(await (o.kind === "user" ? store.getUser(o.id) : store.getOrganization(o.id))),
      }),
    ),
  ];
  // The RAG domain embeds through the EmbeddingsService like any client, with the same interceptors.
  collections.connect(createInProcessTransport(services, { interceptors: routerOptions.interceptors }));
  return {
    routes: (router) => {
      for (const s of services) s.register(router);
    },
    services,
    routerOptions,
    db,
    kv,
    bootstrap,
    modelRegistry: models.registry,
    metrics,
    authenticate: (token) => authenticator.authenticate(token),
    async checkReady() {
      const [database, kvOk] = await Promise.all([
        db.ping().then(
          () => true,
          () => false,
        ),
        kv.ping().then(
          () => true,
          () => false,
        ),
      ]);
      return { database, kv: kvOk };
    },
    async close() {
      await authenticator.close();
      await models.close();
      // Running ingestions finish (or fail) while the embeddings path is still up.
      await collections.close();
      await ocr.close();
      await inference.close();
      // After the listeners drained (server.ts): every finished request is journaled; flush before the database goes.
      await governance.close();
      await db.close();
      await kv.close();
    },
  };
}
