import type { Governor } from "../governance/index.js";
import type { Principal } from "../platform/context.js";
import { invalidArgument } from "../platform/errors.js";
import type { ModelResolver } from "./inference-service.js";
import type { ProviderRouter } from "./provider-router.js";
import type { UpstreamClient } from "./upstream-client.js";

/**
 * What inference shares with every other domain that calls model upstreams (embeddings, rerank, audio, OCR): model
 * resolution, one connection pool and one health view per provider, and governance. Shared, so that a provider
 * serving several domains has one pool, one concurrency limit and one health state.
 */
export interface SharedUpstreams {
  /** Model resolution (the inference domain's port over the registry). */
  models: ModelResolver;
  upstream: UpstreamClient;
  router: ProviderRouter;
  /** Limits, budgets and the usage ledger. */
  governor: Governor;
}

/** A model-calling service's dependencies: the shared upstreams and the upstream settings of `CoreConfig.inference`. */
export interface ModelCallDeps extends SharedUpstreams {
  /** Providers tried per upstream call at most (first try included). */
  maxAttempts: number;
  connectTimeoutMs: number;
  /** Longest silence while reading an upstream answer. */
  idleTimeoutMs: number;
}

export function modelCallDeps(
  shared: SharedUpstreams,
  upstream: { maxAttempts: number; connectTimeoutMs: number; idleTimeoutMs: number },
): ModelCallDeps {
  const { models, upstream: client, router, governor } = shared;
  const { maxAttempts, connectTimeoutMs, idleTimeoutMs } = upstream;
  return { models, upstream: client, router, governor, maxAttempts, connectTimeoutMs, idleTimeoutMs };
}

/**
 * The model `name` as `principal` may use it (NotFound when unknown or not granted), which must be of `type`:
 * otherwise InvalidArgument WRONG_MODEL_TYPE, saying what was wanted (`wanted`, e.g. "a rerank model").
 */
export async function resolveOfType(
  models: ModelResolver,
  principal: Principal,
  name: string,
  type: string,
  wanted: string,
): ReturnType<ModelResolver["resolve"]> {
  const resolved = await models.resolve(name, principal);
  if (resolved.model.type !== type) {
    throw invalidArgument(
      `The model '${name}' is not ${wanted} (type ${resolved.model.type}).`,
      "model",
      "WRONG_MODEL_TYPE",
    );
  }
  return resolved;
}
