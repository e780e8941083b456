import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  type CreateEmbeddingsRequest,
  CreateEmbeddingsResponseSchema,
  type EmbeddingsService,
} from "../../gen/passerelle/embeddings/v1/embeddings_service_pb.js";
import { statusOf } from "../governance/index.js";
import {
  admitCall,
  beforeAdmission,
  type ChatModel,
  callModel,
  createUpstreamClock,
  type ModelCallDeps,
  type ProviderRoute,
  promptTokensIfNeeded,
  resolveOfType,
  SERVER_TIMING,
  servedBy,
  type UpstreamClock,
  upstreamTarget,
  upstreamTiming,
} from "../inference/index.js";
import { runBounded } from "../platform/bounded.js";
import { type Principal, principalOf } from "../platform/context.js";
import { invalidArgument } from "../platform/errors.js";
import {
  type BatchUsage,
  batchFromJson,
  countInputTokens,
  type EmbeddingInputs,
  inputsOf,
  upstreamEmbeddingsBody,
} from "./upstream-json.js";

export interface EmbeddingsDeps extends ModelCallDeps {
  /** Inputs per upstream call at most. */
  maxBatch: number;
  /** Upstream calls of one request in flight at most. */
  concurrency: number;
}

const EMBEDDINGS_TYPE = "text-embeddings-inference";

/** Consecutive slices of at most `size` items. */
function split(inputs: EmbeddingInputs, size: number): EmbeddingInputs[] {
  const out: EmbeddingInputs[] = [];
  for (let i = 0; i < inputs.length; i += size) out.push(inputs.slice(i, i + size) as EmbeddingInputs);
  return out;
}

/** EmbeddingsService: OpenAI-style embeddings over the registry's embeddings models, batched upstream. */
export function createEmbeddingsService(deps: EmbeddingsDeps): ServiceImpl<typeof EmbeddingsService> {
  // Embeddings answers come whole: the first-token bound is the provider's total timeout.
  const target = (p: ProviderRoute) => upstreamTarget(p, { ...deps, firstTokenTimeoutMs: Number.MAX_SAFE_INTEGER });

  /** One batch's upstream call (`callModel`: failover, timing). */
  function embedBatch(
    model: ChatModel,
    req: CreateEmbeddingsRequest,
    input: EmbeddingInputs,
    signal: AbortSignal,
    onProvider: (p: ProviderRoute) => void,
    clock: UpstreamClock,
  ): Promise<{ vectors: number[][]; usage: BatchUsage }> {
    return callModel(deps, model, signal, clock, async (lease) => {
      onProvider(lease.provider);
      const body = upstreamEmbeddingsBody(req, lease.provider.upstreamModel, input);
      const res = await deps.upstream.postJson(target(lease.provider), "/v1/embeddings", body, signal);
      const { vectors, usage } = batchFromJson(res.body, input.length);
      if (usage) return { vectors, usage };
      // No usage from the upstream: count, so that usage is never silently zero.
      const n = countInputTokens(input);
      return { vectors, usage: { promptTokens: n, totalTokens: n } };
    });
  }

  /** What a request must pass before its admission: its inputs, and the model it may use, with its prompt counted. */
  async function admissible(req: CreateEmbeddingsRequest, principal: Principal) {
    if (!req.model) throw invalidArgument("'model' is required.", "model");
    const inputs = inputsOf(req);
    if (inputs.length === 0) throw invalidArgument("'input' must not be empty.", "input");
    if (req.input.case === "tokens") {
      const empty = req.input.value.inputs.findIndex((t) => t.ids.length === 0);
      if (empty >= 0) throw invalidArgument(`'input[${empty}]' must not be an empty token list.`, "input");
    } else if (req.input.case === "texts") {
      // OpenAI's rule ("cannot be an empty string"); the reference system answers 422.
      const empty = req.input.value.texts.indexOf("");
      if (empty >= 0) throw invalidArgument(`'input[${empty}]' must not be an empty string.`, "input");
    }
    if (req.dimensions === 0) throw invalidArgument("'dimensions' must be at least 1.", "dimensions");
    const { model, limits } = await resolveOfType(
      deps.models,
      principal,
      req.model,
      EMBEDDINGS_TYPE,
      "an embeddings model",
    );
    const counted = await promptTokensIfNeeded(deps.governor, principal, model, limits, () => countInputTokens(inputs));
    return { inputs, model, limits, counted };
  }

  return {
    async createEmbeddings(req, ctx) {
      const principal = principalOf(ctx);
      const { inputs, model, limits, counted } = await beforeAdmission(
        deps.governor,
        ctx,
        "embeddings",
        req.model,
        () => admissible(req, principal),
      );
      const admission = await admitCall(deps.governor, ctx, {
        principal,
        endpoint: "embeddings",
        model,
        limits,
        promptTokens: counted,
        maxCompletionTokens: 0,
      });
      const batches = split(inputs, Math.max(1, deps.maxBatch));
      let provider: ProviderRoute | undefined;
      let results: { vectors: number[][]; usage: BatchUsage }[];
      // Batches embedded before another one failed were spent upstream: a failed request is billed for them.
      let spent = 0;
      const clock = createUpstreamClock();
      try {
        results = await runBounded(
          batches.length,
          Math.max(1, deps.concurrency),
          ctx.signal,
          (i, signal) =>
            embedBatch(
              model,
              req,
              batches[i] as EmbeddingInputs,
              signal,
              (p) => {
                provider ??= p;
              },
              clock,
            ),
          (r) => {
            spent += r.usage.promptTokens;
          },
        );
      } catch (err) {
        admission.finish({ ...statusOf(err), promptTokens: spent, completionTokens: 0, servedBy: servedBy(provider) });
        throw err;
      }
      const data: { index: number; embedding: number[] }[] = [];
      let promptTokens = 0;
      let totalTokens = 0;
      for (const r of results) {
        for (const embedding of r.vectors) data.push({ index: data.length, embedding });
        promptTokens += r.usage.promptTokens;
        totalTokens += r.usage.totalTokens;
      }
      const settled = admission.finish({
        status: 200,
        promptTokens,
        completionTokens: 0,
        servedBy: servedBy(provider),
      });
      ctx.responseHeader.set(SERVER_TIMING, upstreamTiming(clock));
      return create(CreateEmbeddingsResponseSchema, {
        model: req.model,
        data,
        usage: {
          promptTokens,
          totalTokens,
          cost: settled.cost,
          carbon: {
            kwh: settled.carbon.kWh,
            kgco2eq: settled.carbon.kgCO2eq,
          },
        },
      });
    },
  };
}
