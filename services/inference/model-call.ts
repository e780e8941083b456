import type { Governor } from "../governance/index.js";
import type { Principal } from "../platform/context.js";
import { invalidArgument } from "../platform/errors.js";
import { type UpstreamClock, withFailover } from "./failover.js";
import type { ChatModel, ModelResolver } from "./inference-service.js";
import type { Lease, ProviderRouter } from "./provider-router.js";
import { type UpstreamClient, UpstreamError } from "./upstream-client.js";
import { toConnectError } from "./upstream-errors.js";

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
 * One upstream call of a model-calling service (embeddings, rerank, audio, an OCR page): failover on the model's
 * providers as for chat (connect errors, 5xx and 429 are tried on another provider: nothing has reached the client
 * before the whole answer), each attempt timed on `clock`, and an upstream failure thrown as its Connect error.
 */
export async function callModel<T>(
  deps: ModelCallDeps,
  model: ChatModel,
  signal: AbortSignal,
  clock: UpstreamClock,
  attempt: (lease: Lease) => Promise<T>,
): Promise<T> {
  try {
    return await withFailover(deps.router, model.providers, deps.maxAttempts, signal, attempt, { clock });
  } catch (err) {
    throw err instanceof UpstreamError ? toConnectError(err) : err;
  }
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
