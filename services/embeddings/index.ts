import type { CoreConfig } from "../config.js";
import type { Governor } from "../governance/index.js";
import type { ModelResolver, ProviderRouter, UpstreamClient } from "../inference/index.js";
import { createEmbeddingsService } from "./embeddings-service.js";

export { createEmbeddingsService, type EmbeddingsDeps } from "./embeddings-service.js";

/**
 * The embeddings domain over the inference domain's upstream pools, provider router and model resolver (shared, so
 * that a provider serving both has one connection pool, one concurrency limit and one health state).
 */
export function setupEmbeddings(deps: {
  shared: { models: ModelResolver; upstream: UpstreamClient; router: ProviderRouter; governor: Governor };
  upstream: CoreConfig["inference"];
  settings: CoreConfig["embeddings"];
}) {
  const service = createEmbeddingsService({
    models: deps.shared.models,
    upstream: deps.shared.upstream,
    router: deps.shared.router,
    governor: deps.shared.governor,
    maxAttempts: deps.upstream.maxAttempts,
    connectTimeoutMs: deps.upstream.connectTimeoutMs,
    idleTimeoutMs: deps.upstream.idleTimeoutMs,
    maxBatch: deps.settings.maxBatch,
    concurrency: deps.settings.concurrency,
  });
  return { service };
}
