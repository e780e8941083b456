import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  type RerankRequest,
  RerankResponseSchema,
  type RerankService,
} from "../../gen/passerelle/rerank/v1/rerank_service_pb.js";
import { statusOf } from "../governance/index.js";
import {
  admitCall,
  beforeAdmission,
  callModel,
  createUpstreamClock,
  type ModelCallDeps,
  type ProviderRoute,
  promptTokensIfNeeded,
  resolveOfType,
  SERVER_TIMING,
  servedBy,
  upstreamTarget,
  upstreamTiming,
} from "../inference/index.js";
import { type Principal, principalOf } from "../platform/context.js";
import { invalidArgument } from "../platform/errors.js";
import {
  countRerankTokens,
  dialectOf,
  ranked,
  rerankFromJson,
  type Scored,
  TEI_MAX_BATCH,
  type UpstreamRerank,
  upstreamPath,
  upstreamRerankBody,
} from "./upstream-json.js";

export type RerankDeps = ModelCallDeps;

const RERANK_TYPE = "text-classification";

/** RerankService: Cohere-style reranking over the registry's `text-classification` models (TEI and vLLM). */
export function createRerankService(deps: RerankDeps): ServiceImpl<typeof RerankService> {
  // Rerank answers come whole: the first-token bound is the provider's total timeout.
  const target = (p: ProviderRoute) => upstreamTarget(p, { ...deps, firstTokenTimeoutMs: Number.MAX_SAFE_INTEGER });

  /** The whole request on one provider, in its dialect: one vLLM call, or TEI calls of at most TEI_MAX_BATCH texts. */
  async function rerankOn(p: ProviderRoute, req: RerankRequest, signal: AbortSignal): Promise<UpstreamRerank> {
    const dialect = dialectOf(p.type);
    const expected = req.documents.length;
    if (dialect === "vllm") {
      const body = upstreamRerankBody(req, dialect, p.upstreamModel);
      const res = await deps.upstream.postJson(target(p), upstreamPath(dialect), body, signal);
      return rerankFromJson(res.body, dialect, expected, Math.min(req.topN ?? expected, expected));
    }
    const scores: Scored[] = [];
    for (let at = 0; at < expected; at += TEI_MAX_BATCH) {
      const slice = req.documents.slice(at, at + TEI_MAX_BATCH);
      const body = upstreamRerankBody(req, dialect, p.upstreamModel, slice);
      const res = await deps.upstream.postJson(target(p), upstreamPath(dialect), body, signal);
      for (const s of rerankFromJson(res.body, dialect, slice.length, slice.length).scores) {
        scores.push({ index: at + s.index, score: s.score });
      }
    }
    return { scores, totalTokens: undefined };
  }

  /** What a request must pass before its admission: its fields, and the model it may use, with its prompt counted. */
  async function admissible(req: RerankRequest, principal: Principal) {
    if (!req.model) throw invalidArgument("'model' is required.", "model");
    if (!req.query.trim()) throw invalidArgument("'query' must not be empty.", "query");
    if (req.documents.length === 0) throw invalidArgument("'documents' must not be empty.", "documents");
    // Cohere's rule: at least 1; more than the documents means all of them (the reference system's behaviour).
    if (req.topN === 0) throw invalidArgument("'top_n' must be at least 1.", "top_n");
    const { model, limits } = await resolveOfType(deps.models, principal, req.model, RERANK_TYPE, "a rerank model");
    const counted = await promptTokensIfNeeded(deps.governor, principal, model, limits, () =>
      countRerankTokens(req.query, req.documents),
    );
    return { model, limits, counted };
  }

  return {
    async rerank(req, ctx) {
      const principal = principalOf(ctx);
      const { model, limits, counted } = await beforeAdmission(deps.governor, ctx, "rerank", req.model, () =>
        admissible(req, principal),
      );
      const admission = await admitCall(deps.governor, ctx, {
        principal,
        endpoint: "rerank",
        model,
        limits,
        promptTokens: counted,
        maxCompletionTokens: 0,
      });
      let provider: ProviderRoute | undefined;
      let answer: UpstreamRerank;
      const clock = createUpstreamClock();
      try {
        // Each provider is asked in its own dialect.
        answer = await callModel(deps, model, ctx.signal, clock, (lease) => {
          provider = lease.provider;
          return rerankOn(lease.provider, req, ctx.signal);
        });
      } catch (err) {
        admission.finish({ ...statusOf(err), promptTokens: 0, completionTokens: 0, servedBy: servedBy(provider) });
        throw err;
      }
      // No usage from the upstream (TEI never sends any): count, so that usage is never silently zero.
      const promptTokens = answer.totalTokens ?? (counted || countRerankTokens(req.query, req.documents));
      const settled = admission.finish({
        status: 200,
        promptTokens,
        completionTokens: 0,
        servedBy: servedBy(provider),
      });
      ctx.responseHeader.set(SERVER_TIMING, upstreamTiming(clock));
      return create(RerankResponseSchema, {
        id: admission.usageId,
        model: req.model,
        results: ranked(answer.scores, req.topN).map((r) => ({
          index: r.index,
          relevanceScore: r.score,
          document: req.returnDocuments ? req.documents[r.index] : undefined,
        })),
        usage: {
          promptTokens,
          totalTokens: promptTokens,
          cost: settled.cost,
          carbon: { kwh: settled.carbon.kWh, kgco2eq: settled.carbon.kgCO2eq },
        },
      });
    },
  };
}
