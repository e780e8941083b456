import type { HandlerContext } from "@connectrpc/connect";
import type { Admission, AdmitInput, GovernedModel, Governor, Limits } from "../governance/index.js";
import type { Principal } from "../platform/context.js";
import { kPrincipal, kRequestId, kUsageEndpoint } from "../platform/context.js";

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

/**
 * The request's prompt counted by `count`, when something reserves it before the answer (a token limit, the role's
 * or the key's; a budget: Governor.needsPromptTokens); else 0, and nothing is counted. The upstream's count is billed.
 */
export async function promptTokensIfNeeded(
  governor: Governor,
  principal: Principal,
  model: GovernedModel,
  limits: Limits | null,
  count: () => number,
): Promise<number> {
  const needs = governor.needsPromptTokens(principal, model, limits);
  return needs === true || (needs !== false && (await needs)) ? count() : 0;
}
