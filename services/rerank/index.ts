import type { CoreConfig } from "../config.js";
import type { Governor } from "../governance/index.js";
import type { ModelResolver, ProviderRouter, UpstreamClient } from "../inference/index.js";
import { createRerankService } from "./rerank-service.js";

export { createRerankService, type RerankDeps } from "./rerank-service.js";

/**
 * The rerank domain over the inference domain's upstream pools, provider router and model resolver (shared, so that
 * a provider serving several domains has one connection pool, one concurrency limit and one health state).
 */
export function setupRerank(deps: {
  shared: { models: ModelResolver; upstream: UpstreamClient; router: ProviderRouter; governor: Governor };
  upstream: CoreConfig["inference"];
}) {
  const service = createRerankService({
    models: deps.shared.models,
    upstream: deps.shared.upstream,
    router: deps.shared.router,
    governor: deps.shared.governor,
    maxAttempts: deps.upstream.maxAttempts,
    connectTimeoutMs: deps.upstream.connectTimeoutMs,
    idleTimeoutMs: deps.upstream.idleTimeoutMs,
  });
  return { service };
}
