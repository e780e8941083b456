import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  type ChatCompletionChunk,
  ChatCompletionChunkSchema,
  type ChatCompletionParams,
  type Usage,
} from "../../gen/passerelle/inference/v1/chat_pb.js";
import {
  type InferenceService,
  ListProviderStatesResponseSchema,
  StreamChatCompletionResponseSchema,
} from "../../gen/passerelle/inference/v1/inference_service_pb.js";
import type { AdmitInput, Governor, Limits, Settled } from "../governance/index.js";
import { statusOf } from "../governance/index.js";
import { kPrincipal, kRequestId, type Principal } from "../platform/context.js";
import { invalidArgument, permissionDenied, rpcError, unauthenticated } from "../platform/errors.js";
import { beforeAdmission, promptTokensIfNeeded } from "./admission.js";
import { choicesGenerated, refuseStreamOptions } from "./chat-checks.js";
import { forwardWhileAdmitting } from "./early-forward.js";
import { createUpstreamClock, SERVER_TIMING, upstreamTarget, upstreamTiming, withFailover } from "./failover.js";
import { chunkFromJson, completionFromJson, upstreamChatBody } from "./openai-json.js";
import { type Lease, type ProviderRoute, type ProviderRouter, servedBy } from "./provider-router.js";
import { applySearchTool, DEFAULT_SEARCH_TEMPLATE, type Retrieve } from "./search-tool.js";
import { countedUsage, countPromptTokens, countTextTokens, usageOf } from "./token-count.js";
import { type UpstreamClient, UpstreamError } from "./upstream-client.js";
import { beforeFirstChunk, toConnectError } from "./upstream-errors.js";

/** What inference needs to know about a model: the port the model registry fills. */
export interface ChatModel {
  /** Public name (what the client asked for may be an alias; responses carry the name asked for). */
  name: string;
  type: string;
  /** Prices per 1M tokens, in the platform's currency. */
  costPromptPerMillion: number;
  costCompletionPerMillion: number;
  providers: ProviderRoute[];
}

export interface ModelResolver {
  /**
   * The model usable by `principal` under this name or alias, with the caller's limits on it (null = unlimited).
   * NotFound when unknown or not granted; PermissionDenied when the grant forbids it.
   */
  resolve(nameOrAlias: string, principal: Principal): Promise<{ model: ChatModel; limits: Limits | null }>;
  /**
   * The id of every provider of every model the registry knows, for the admins' provider states. Without it, those
   * list only the providers routed to since the start.
   */
  providerIds?(): Promise<Iterable<string>>;
}

export interface InferenceDeps {
  models: ModelResolver;
  upstream: UpstreamClient;
  router: ProviderRouter;
  /** Limits, budgets and the usage ledger: every call is admitted before and settled after. */
  governor: Governor;
  /** Completion tokens reserved when the request sets no max_tokens (times n). */
  defaultMaxTokens: number;
  /** Providers tried per request at most (first try included). */
  maxAttempts: number;
  /** Streaming: longest wait for the first token (the whole answer for unary calls uses the provider timeout). */
  firstTokenTimeoutMs: number;
  /** Streaming: longest silence between two chunks. */
  idleTimeoutMs: number;
  connectTimeoutMs: number;
  /** Runs the gateway's `search` tool; absent = the tool is refused (RAG not configured). */
  retrieve?: Retrieve;
  /** Template of the search tool's rewritten message (`{prompt}`, `{chunks}`). */
  searchTemplate?: string;
}

const CHAT_TYPES = new Set(["text-generation", "image-text-to-text"]);

/** The gateway's additions to OpenAI's usage: cost and carbon. */
function withImpact(usage: Usage, settled: Settled): Usage {
  usage.cost = settled.cost;
  usage.carbon = {
    $typeName: "passerelle.governance.v1.CarbonFootprint",
    kwh: { $typeName: "passerelle.governance.v1.EstimateRange", ...settled.carbon.kWh },
    kgco2eq: { $typeName: "passerelle.governance.v1.EstimateRange", ...settled.carbon.kgCO2eq },
  };
  return usage;
}

/** InferenceService: chat completions, unary and streamed, over one path to the upstream. */
export function createInferenceService(deps: InferenceDeps): ServiceImpl<typeof InferenceService> {
  const target = (p: ProviderRoute) => upstreamTarget(p, deps);

  /**
   * What a request must pass before its admission: its fields, the chat model it may use, the search tool's
   * retrieval (its chunks are part of the prompt the limits and the budget reserve for), and the prompt counted.
   */
  async function admissible(
    asked: ChatCompletionParams | undefined,
    principal: Principal,
    ctx: HandlerContext,
    unary: boolean,
  ) {
    if (!asked?.model) throw invalidArgument("'model' is required.", "model");
    if (unary) refuseStreamOptions(asked);
    if (asked.messages.length === 0) throw invalidArgument("'messages' must not be empty.", "messages");
    // `n` and `best_of` (CreateChatCompletion's `extra` included), before anything is looked up or retrieved.
    const choices = choicesGenerated(asked);
    const { model, limits } = await deps.models.resolve(asked.model, principal);
    if (!CHAT_TYPES.has(model.type)) {
      throw invalidArgument(
        `The model '${asked.model}' is not a chat model (type ${model.type}).`,
        "model",
        "WRONG_MODEL_TYPE",
      );
    }
    const { params, results: searchResults } = await applySearchTool(
      asked,
      principal,
      deps.retrieve,
      ctx.signal,
      deps.searchTemplate ?? DEFAULT_SEARCH_TEMPLATE,
    );
    const promptTokens = await promptTokensIfNeeded(deps.governor, principal, model, limits, () =>
      countPromptTokens(params),
    );
    return { model, limits, params, searchResults, promptTokens, choices };
  }

  async function prepare(asked: ChatCompletionParams | undefined, ctx: HandlerContext, unary: boolean) {
    const principal = ctx.values.get(kPrincipal);
    if (!principal) throw unauthenticated("Missing API key.", "MISSING_API_KEY");
    const { model, limits, params, searchResults, promptTokens, choices } = await beforeAdmission(
      deps.governor,
      ctx,
      "chat.completions",
      asked?.model ?? "",
      () => admissible(asked, principal, ctx, unary),
    );
    const perChoice = params.maxCompletionTokens ?? params.maxTokens ?? deps.defaultMaxTokens;
    const input: AdmitInput = {
      principal,
      requestId: ctx.values.get(kRequestId),
      endpoint: "chat.completions",
      model,
      limits,
      promptTokens,
      maxCompletionTokens: perChoice * choices,
    };
    // Asked before admit(), which counts this call among the caller's undecided ones.
    const early = deps.governor.mayForwardEarly(input);
    return { model, params, promptTokens, searchResults, admitting: deps.governor.admit(input), early };
  }

  /**
   * The call's upstream work, started after its admission or, when the governor allows, while it is decided
   * (early-forward.ts); resolves once admitted, with the rate-limit headers on the answer.
   */
  async function admitted<T>(
    prepared: Awaited<ReturnType<typeof prepare>>,
    ctx: HandlerContext,
    forward: (signal: AbortSignal) => Promise<T>,
    discard: (out: T) => void,
  ) {
    const f = await forwardWhileAdmitting(prepared.admitting, prepared.early, ctx.signal, forward, discard);
    for (const [k, v] of Object.entries(f.admission.headers)) ctx.responseHeader.set(k, v);
    return f;
  }

  /** Failover across the model's providers; upstream failures reach the client as Connect errors. */
  async function failover<T>(
    model: ChatModel,
    ctx: HandlerContext,
    signal: AbortSignal,
    attempt: (lease: Lease) => Promise<T>,
    hold = false,
  ) {
    const clock = createUpstreamClock();
    try {
      const out = await withFailover(deps.router, model.providers, deps.maxAttempts, signal, attempt, {
        hold,
        clock,
      });
      // Before the answer (or, for a stream, its first chunk): the time to the upstream's answer or first event.
      ctx.responseHeader.set(SERVER_TIMING, upstreamTiming(clock));
      return out;
    } catch (err) {
      throw err instanceof UpstreamError ? toConnectError(err) : err;
    }
  }

  return {
    async listProviderStates(_req, ctx) {
      const principal = ctx.values.get(kPrincipal);
      if (!principal?.permissions.has("admin")) throw permissionDenied("This operation needs the 'admin' permission.");
      const ids = await deps.models.providerIds?.();
      return create(ListProviderStatesResponseSchema, {
        states: (ids ? deps.router.listed(ids) : deps.router.snapshot()).map((s) => ({
          providerId: s.id,
          inFlight: s.inFlight,
          waiting: s.waiting,
          healthy: s.healthy,
          consecutiveFailures: s.consecutiveFailures,
          ejectedUntil: s.ejectedUntil === null ? undefined : timestampFromMs(s.ejectedUntil),
        })),
      });
    },

    async createChatCompletion(req, ctx) {
      const prepared = await prepare(req.params, ctx, true);
      const { model, params, searchResults } = prepared;
      let provider: ProviderRoute | undefined;
      const { admission, result, done } = await admitted(
        prepared,
        ctx,
        (signal) =>
          failover(model, ctx, signal, async (lease) => {
            provider = lease.provider;
            const body = upstreamChatBody(params, lease.provider.upstreamModel, false);
            const res = await deps.upstream.postJson(target(lease.provider), "/v1/chat/completions", body, signal);
            return completionFromJson(res.body, params.model);
          }),
        () => {},
      );
      try {
        const completion = await result;
        completion.usage ??= countedUsage(params, completion);
        const settled = admission.finish({
          status: 200,
          promptTokens: completion.usage.promptTokens,
          completionTokens: completion.usage.completionTokens,
          servedBy: servedBy(provider),
        });
        withImpact(completion.usage, settled);
        if (searchResults) completion.searchResults = searchResults;
        return { $typeName: "passerelle.inference.v1.CreateChatCompletionResponse", completion };
      } catch (err) {
        admission.finish({ ...statusOf(err), promptTokens: 0, completionTokens: 0, servedBy: servedBy(provider) });
        throw err;
      } finally {
        done();
      }
    },

    async *streamChatCompletion(req, ctx) {
      const prepared = await prepare(req.params, ctx, false);
      const { model, params, promptTokens, searchResults } = prepared;
      /** When the upstream work began (after the admission, or during it when forwarded early): for the TTFT. */
      let started = 0;
      const wantsUsage = params.streamOptions?.includeUsage === true;
      let provider: ProviderRoute | undefined;
      // Open the stream and read its first event under failover: until a chunk is yielded, nothing reached the
      // client, so another provider may still be tried.
      type Opened = { lease: Lease; events: AsyncIterableIterator<string>; first: IteratorResult<string>; at: number };
      const { admission, result, done } = await admitted(
        prepared,
        ctx,
        (signal) => {
          started = performance.now();
          return failover(
            model,
            ctx,
            signal,
            async (lease): Promise<Opened> => {
              provider = lease.provider;
              const body = upstreamChatBody(params, lease.provider.upstreamModel, true);
              const events = deps.upstream.postStream(target(lease.provider), "/v1/chat/completions", body, signal);
              const first = await events.next().catch((err: unknown) => {
                throw beforeFirstChunk(err);
              });
              return { lease, events, first, at: performance.now() };
            },
            true,
          );
        },
        // Refused after the stream opened: nothing of it reached the client; its slot and connection are freed.
        (o) => {
          o.lease.release("neutral");
          o.events.return?.(undefined).catch(() => {});
        },
      );
      let opened: Opened;
      try {
        opened = await result;
      } catch (err) {
        done();
        admission.finish({ ...statusOf(err), promptTokens: 0, completionTokens: 0, servedBy: servedBy(provider) });
        throw err;
      }
      // From the upstream work's start to its first event: an admission decided after that event is not in it.
      const ttftMs = opened.at - started;
      const { events, lease } = opened;
      let next = opened.first;
      let outcome: "ok" | "failure" | "neutral" = "neutral";
      let usage: Usage | undefined;
      let held: ChatCompletionChunk | undefined;
      const generated: string[] = [];
      let last: ChatCompletionChunk | undefined;
      let ended: { status: number; errorCode?: string } | undefined;
      try {
        while (!next.done) {
          const chunk = chunkFromJson(JSON.parse(next.value), params.model);
          last = chunk;
          if (chunk.usage) usage = chunk.usage;
          // What was generated, for counting when the upstream sends no usage: kept as pieces, joined only then.
          for (const c of chunk.choices) {
            const d = c.delta;
            if (!d) continue;
            if (d.content) generated.push(d.content);
            for (const t of d.toolCalls) if (t.functionArguments) generated.push(t.functionArguments);
          }
          if (chunk.choices.length === 0 && chunk.usage !== undefined) {
            // The usage chunk: held until the stream ends, to carry the cost and carbon of the whole request.
            held = chunk;
          } else {
            if (!wantsUsage) chunk.usage = undefined;
            // A literal, not create(): once per token (see chunkFromJson).
            yield { $typeName: "passerelle.inference.v1.StreamChatCompletionResponse", chunk };
          }
          next = await events.next();
        }
        outcome = "ok";
        // The upstream sent no usage although asked: count.
        usage ??= usageOf(countPromptTokens(params), countTextTokens(generated.join("")));
        ended = { status: 200 };
        const settled = admission.finish({
          status: 200,
          promptTokens: usage.promptTokens,
          completionTokens: usage.completionTokens,
          servedBy: servedBy(provider),
          ttftMs,
        });
        // The final chunk: usage when asked, and what the search tool retrieved.
        if ((wantsUsage || searchResults) && (held || last)) {
          const base = held ?? (last as ChatCompletionChunk);
          yield create(StreamChatCompletionResponseSchema, {
            chunk: create(ChatCompletionChunkSchema, {
              id: base.id,
              created: base.created,
              model: params.model,
              choices: [],
              usage: wantsUsage ? withImpact(usage, settled) : undefined,
              systemFingerprint: base.systemFingerprint,
              searchResults: searchResults ?? [],
            }),
          });
        }
      } catch (err) {
        if (err instanceof UpstreamError) {
          if (err.failure.kind !== "aborted") outcome = "failure";
          const ce = toConnectError(err);
          ended = statusOf(ce);
          throw ce;
        }
        if (err instanceof SyntaxError) {
          ended = { status: 502, errorCode: "Unavailable" };
          throw rpcError(Code.Unavailable, "The model's server sent an invalid chunk.", "UPSTREAM_PROTOCOL_ERROR", {
            cause: err,
          });
        }
        ended = statusOf(err);
        throw err;
      } finally {
        lease.release(outcome);
        await events.return?.(undefined);
        done();
        if (ended?.status !== 200) {
          // Failed or cancelled after the first byte (a client that left ends here too): what was generated so far
          // was produced by the model, and is charged.
          admission.finish({
            status: ended?.status ?? 499,
            errorCode: ended?.errorCode ?? "Canceled",
            promptTokens: usage?.promptTokens ?? (promptTokens || countPromptTokens(params)),
            completionTokens: usage?.completionTokens ?? countTextTokens(generated.join("")),
            servedBy: servedBy(provider),
            ttftMs,
          });
        }
      }
    },
  };
}
