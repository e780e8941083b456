import type { CoreConfig } from "../config.js";
import { modelCallDeps, type SharedUpstreams } from "../inference/index.js";
import { createRerankService } from "./rerank-service.js";

export { createRerankService, type RerankDeps } from "./rerank-service.js";

/**
 * The rerank domain over the inference domain's upstream pools, provider router and model resolver (shared, so that
 * a provider serving several domains has one connection pool, one concurrency limit and one health state).
 */
export function setupRerank(deps: { shared: SharedUpstreams; upstream: CoreConfig["inference"] }) {
  const service = createRerankService({
    ...modelCallDeps(deps.shared, deps.upstream),
  });
  return { service };
}
