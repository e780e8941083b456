import type { CoreConfig } from "../config.js";
import type { Governor } from "../governance/index.js";
import type { ModelRegistry, ResolvedModel } from "../models/index.js";
import { type ChatModel, createInferenceService, type ModelResolver } from "./inference-service.js";
import { createProviderRouter, type ProviderRoute } from "./provider-router.js";
import type { Retrieve } from "./search-tool.js";
import { createUpstreamClient } from "./upstream-client.js";

export { admitCall, beforeAdmission, promptTokensIfNeeded } from "./admission.js";
export {
  createUpstreamClock,
  SERVER_TIMING,
  type UpstreamClock,
  upstreamTarget,
  upstreamTiming,
  withFailover,
} from "./failover.js";
export { type ChatModel, createInferenceService, type ModelResolver } from "./inference-service.js";
export {
  callModel,
  type ModelCallDeps,
  modelCallDeps,
  resolveOfType,
  type SharedUpstreams,
} from "./model-call.js";
export { type Lease, type ProviderRoute, type ProviderRouter, servedBy } from "./provider-router.js";
export { checkTemplate, DEFAULT_SEARCH_TEMPLATE, type Retrieve } from "./search-tool.js";
export { createUpstreamClient, type UpstreamClient, UpstreamError, type UpstreamTarget } from "./upstream-client.js";
export { toConnectError } from "./upstream-errors.js";

const HEALTH_TIMEOUTS = { connectMs: 2_000, headersMs: 5_000, firstTokenMs: 5_000, idleMs: 5_000, totalMs: 5_000 };

// Adapted once per registry object (resolutions are cached and frozen there), so routing allocates nothing per call.
const adapted = new WeakMap<ResolvedModel, ChatModel>();

function chatModel(m: ResolvedModel): ChatModel {
  let c = adapted.get(m);
  if (!c) {
    c = {
      name: m.name,
      type: m.type,
      costPromptPerMillion: m.costPromptPerMillion,
      costCompletionPerMillion: m.costCompletionPerMillion,
      providers: m.providers.map(
        (p): ProviderRoute => ({
          id: p.id,
          type: p.type,
          baseUrl: p.url,
          apiKey: p.key ?? undefined,
          upstreamModel: p.upstreamModel,
          timeoutSeconds: p.timeoutSeconds,
          weight: p.weight,
          maxConcurrency: p.maxConcurrency,
          carbon: p.carbon,
        }),
      ),
    };
    // Frozen: shared by every request, and governance caches its prices in nano-units per object.
    Object.freeze(c);
    adapted.set(m, c);
  }
  return c;
}

/** The inference domain wired over the model registry: upstream pools, provider routing, InferenceService. */
export function setupInference(deps: {
  registry: ModelRegistry;
  governor: Governor;
  /** Completion tokens reserved when a request sets no max_tokens. */
  defaultMaxTokens: number;
  settings: CoreConfig["inference"];
  /** The `search` tool's retrieval (the SearchService); absent when RAG is not configured. */
  retrieve?: Retrieve;
  searchTemplate?: string;
}) {
  const upstream = createUpstreamClient();
  const router = createProviderRouter({
    queueTimeoutMs: deps.settings.queueTimeoutMs,
    ejectAfterFailures: deps.settings.ejectAfterFailures,
    ejectErrorPercent: deps.settings.ejectErrorPercent,
    cooldownMs: deps.settings.cooldownMs,
    workers: deps.settings.workers,
    // A cheap liveness check, never a billed completion: vLLM's and TEI's /health; a hosted OpenAI-compatible API
    // has none (404 would keep it ejected for good), its model list is free.
    probe: (p) =>
      upstream
        .getJson(
          { baseUrl: p.baseUrl, apiKey: p.apiKey, timeouts: HEALTH_TIMEOUTS },
          p.type === "openai" ? "/v1/models" : "/health",
        )
        .then(
          () => true,
          () => false,
        ),
  });
  const models: ModelResolver = {
    resolve: async (name, principal) => {
      const r = await deps.registry.resolveForUse(name, principal);
      return { model: chatModel(r.model), limits: r.limits };
    },
    // Every provider of the registry (all models, all types), for the admins' provider states.
    providerIds: () => deps.registry.providerIds(),
  };
  const service = createInferenceService({
    models,
    upstream,
    router,
    governor: deps.governor,
    defaultMaxTokens: deps.defaultMaxTokens,
    maxAttempts: deps.settings.maxAttempts,
    firstTokenTimeoutMs: deps.settings.firstTokenTimeoutMs,
    idleTimeoutMs: deps.settings.idleTimeoutMs,
    connectTimeoutMs: deps.settings.connectTimeoutMs,
    retrieve: deps.retrieve,
    searchTemplate: deps.searchTemplate,
  });
  /**
   * Every provider of the registry as this process's router sees it (one never routed to is healthy and idle; a
   * deleted one is dropped), for the /metrics gauges. Registry unreachable: what the router knows, so that provider
   * health stays visible during a database outage, when it matters most.
   */
  async function providerStates() {
    let ids: string[];
    try {
      ids = await deps.registry.providerIds();
    } catch {
      return router.snapshot();
    }
    return router.listed(ids);
  }
  // `upstream`, `router` and `models` are shared with the embeddings domain: one pool and one health view per provider.
  return { service, router, upstream, models, providerStates, governor: deps.governor, close: () => upstream.close() };
}
