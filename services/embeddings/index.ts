import type { CoreConfig } from "../config.js";
import { modelCallDeps, type SharedUpstreams } from "../inference/index.js";
import { createEmbeddingsService } from "./embeddings-service.js";

export { createEmbeddingsService, type EmbeddingsDeps } from "./embeddings-service.js";

/**
 * The embeddings domain over the inference domain's upstream pools, provider router and model resolver (shared, so
 * that a provider serving both has one connection pool, one concurrency limit and one health state).
 */
export function setupEmbeddings(deps: {
  shared: SharedUpstreams;
  upstream: CoreConfig["inference"];
  settings: CoreConfig["embeddings"];
}) {
  const service = createEmbeddingsService({
    ...modelCallDeps(deps.shared, deps.upstream),
    maxBatch: deps.settings.maxBatch,
    concurrency: deps.settings.concurrency,
  });
  return { service };
}
