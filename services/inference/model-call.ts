import type { HandlerContext } from "@connectrpc/connect";
import type { Admission, AdmitInput, Governor } from "../governance/index.js";
import { kPrincipal, kRequestId, kUsageEndpoint, type Principal } from "../platform/context.js";
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

/**
 * Admits one call before anything is forwarded, under the request's id and `endpoint` (or the usage endpoint an
 * in-process caller set, e.g. `documents`), and puts the rate-limit headers on the answer.
 */
export async function admitCall(
  governor: Governor,
  ctx: HandlerContext,
  input: Omit<AdmitInput, "requestId">,
): Promise<Admission> {
  const admission = await governor.admit({
    ...input,
    requestId: ctx.values.get(kRequestId),
    endpoint: ctx.values.get(kUsageEndpoint) ?? input.endpoint,
  });
  for (const [k, v] of Object.entries(admission.headers)) ctx.responseHeader.set(k, v);
  return admission;
}

/**
 * Runs what a model call checks before its admission — the request, the model, the caller's right to it — so that a
 * refusal there still gets its one usage record (Governor.refusedBeforeAdmission), under the model name as asked and
 * the call's usage endpoint. A call without a principal (no valid key) has no record: there is no one to bill.
 */
export async function beforeAdmission<T>(
  governor: Governor,
  ctx: HandlerContext,
  endpoint: string,
  model: string,
  checks: () => Promise<T>,
): Promise<T> {
  const started = Date.now();
  try {
    return await checks();
  } catch (err) {
    const principal = ctx.values.get(kPrincipal);
    if (principal) {
      governor.refusedBeforeAdmission(
        {
          principal,
          requestId: ctx.values.get(kRequestId),
          endpoint: ctx.values.get(kUsageEndpoint) ?? endpoint,
          model,
          started,
        },
        err,
      );
    }
    throw err;
  }
}
