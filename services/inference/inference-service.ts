import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { Logger } from "pino";
import {
  type ChatCompletionChunk,
  ChatCompletionChunkSchema,
  type ChatCompletionParams,
  type Usage,
} from "../../gen/passerelle/inference/v1/chat_pb.js";
import {
  CreateChatCompletionResponseSchema,
  type InferenceService,
  ListProviderStatesResponseSchema,
  StreamChatCompletionResponseSchema,
} from "../../gen/passerelle/inference/v1/inference_service_pb.js";
import { kLogger, kPrincipal, type Principal } from "../platform/context.js";
import { invalidArgument, permissionDenied, rpcError, unauthenticated } from "../platform/errors.js";
import { upstreamTarget, withFailover } from "./failover.js";
import { chunkFromJson, completionFromJson, upstreamChatBody } from "./openai-json.js";
import type { Lease, ProviderRoute, ProviderRouter } from "./provider-router.js";
import { countedUsage, countPromptTokens, countTextTokens, usageOf } from "./token-count.js";
import { type UpstreamClient, UpstreamError } from "./upstream-client.js";

/** What inference needs to know about a model: the port the model registry fills. */
export interface ChatModel {
  /** Public name (what the client asked for may be an alias; responses carry the name asked for). */
  name: string;
  type: string;
  providers: ProviderRoute[];
}

export interface ModelResolver {
  /** The model usable by `principal` under this name or alias; NotFound otherwise. */
  resolve(nameOrAlias: string, principal: Principal): Promise<ChatModel>;
}

export interface InferenceDeps {
  models: ModelResolver;
  upstream: UpstreamClient;
  router: ProviderRouter;
  logger: Logger;
  /** Providers tried per request at most (first try included). */
  maxAttempts: number;
  /** Streaming: longest wait for the first token (the whole answer for unary calls uses the provider timeout). */
  firstTokenTimeoutMs: number;
  /** Streaming: longest silence between two chunks. */
  idleTimeoutMs: number;
  connectTimeoutMs: number;
}

const CHAT_TYPES = new Set(["text-generation", "image-text-to-text"]);

/** The upstream failure as the client should see it. 4xx keep their status and message. */
export function toConnectError(e: UpstreamError): ConnectError {
  const f = e.failure;
  switch (f.kind) {
    case "http": {
      if (f.status >= 400 && f.status < 500) {
        const code =
          f.status === 404
            ? Code.NotFound
            : f.status === 429
              ? Code.ResourceExhausted
              : f.status === 401 || f.status === 403
                ? Code.PermissionDenied
                : Code.InvalidArgument;
        return rpcError(code, f.message, "UPSTREAM_REJECTED", {
          upstreamStatus: f.status,
          retryAfterSeconds: f.retryAfterSeconds,
          cause: e,
        });
      }
      return rpcError(Code.Unavailable, `The model's server failed (HTTP ${f.status}).`, "UPSTREAM_ERROR", {
        retryAfterSeconds: f.retryAfterSeconds ?? 1,
        cause: e,
      });
    }
    case "connect":
      return rpcError(Code.Unavailable, "The model is temporarily unreachable.", "UPSTREAM_UNREACHABLE", {
        retryAfterSeconds: 1,
        cause: e,
      });
    case "timeout":
      return rpcError(
        Code.DeadlineExceeded,
        `The model did not answer in time (${f.phase.replace("_", " ")}).`,
        "UPSTREAM_TIMEOUT",
        {
          cause: e,
        },
      );
    case "stream_error":
      return rpcError(Code.Unavailable, `The model failed while generating: ${f.message}`, "UPSTREAM_STREAM_ERROR", {
        cause: e,
      });
    case "aborted":
      return rpcError(Code.Canceled, "The request was cancelled.", "CANCELLED", { cause: e });
    default:
      return rpcError(Code.Unavailable, "The model's server sent an invalid answer.", "UPSTREAM_PROTOCOL_ERROR", {
        cause: e,
      });
  }
}

/** InferenceService: chat completions, unary and streamed, over one path to the upstream. */
export function createInferenceService(deps: InferenceDeps): ServiceImpl<typeof InferenceService> {
  const target = (p: ProviderRoute) => upstreamTarget(p, deps);

  async function prepare(params: ChatCompletionParams | undefined, ctx: HandlerContext) {
    const principal = ctx.values.get(kPrincipal);
    if (!principal) throw unauthenticated("Missing API key.", "MISSING_API_KEY");
    if (!params?.model) throw invalidArgument("'model' is required.", "model");
    if (params.messages.length === 0) throw invalidArgument("'messages' must not be empty.", "messages");
    const model = await deps.models.resolve(params.model, principal);
    if (!CHAT_TYPES.has(model.type)) {
      throw invalidArgument(
        `The model '${params.model}' is not a chat model (type ${model.type}).`,
        "model",
        "WRONG_MODEL_TYPE",
      );
    }
    return { model, params, log: ctx.values.get(kLogger) ?? deps.logger };
  }

  /** Failover across the model's providers; upstream failures reach the client as Connect errors. */
  async function failover<T>(
    model: ChatModel,
    ctx: HandlerContext,
    attempt: (lease: Lease) => Promise<T>,
    hold = false,
  ) {
    try {
      return await withFailover(deps.router, model.providers, deps.maxAttempts, ctx.signal, attempt, hold);
    } catch (err) {
      throw err instanceof UpstreamError ? toConnectError(err) : err;
    }
  }

  return {
    async listProviderStates(_req, ctx) {
      const principal = ctx.values.get(kPrincipal);
      if (!principal?.permissions.has("admin")) throw permissionDenied("This operation needs the 'admin' permission.");
      return create(ListProviderStatesResponseSchema, {
        states: deps.router.snapshot().map((s) => ({
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
      const { model, params } = await prepare(req.params, ctx);
      const completion = await failover(model, ctx, async (lease) => {
        const body = upstreamChatBody(params, lease.provider.upstreamModel, false);
        const res = await deps.upstream.postJson(target(lease.provider), "/v1/chat/completions", body, ctx.signal);
        return completionFromJson(res.body, params.model);
      });
      completion.usage ??= countedUsage(params, completion);
      return create(CreateChatCompletionResponseSchema, { completion });
    },

    async *streamChatCompletion(req, ctx) {
      const { model, params } = await prepare(req.params, ctx);
      const wantsUsage = params.streamOptions?.includeUsage === true;
      // Open the stream and read its first event under failover: until a chunk is yielded, nothing reached the
      // client, so another provider may still be tried.
      const opened = await failover(
        model,
        ctx,
        async (lease) => {
          const body = upstreamChatBody(params, lease.provider.upstreamModel, true);
          const events = deps.upstream.postStream(target(lease.provider), "/v1/chat/completions", body, ctx.signal);
          const first = await events.next();
          return { lease, events, first };
        },
        true,
      );
      const { events, lease } = opened;
      let next = opened.first;
      let outcome: "ok" | "failure" | "neutral" = "neutral";
      let usage: Usage | undefined;
      let generated = "";
      let last: ChatCompletionChunk | undefined;
      try {
        while (!next.done) {
          const chunk = chunkFromJson(JSON.parse(next.value), params.model);
          last = chunk;
          if (chunk.usage) usage = chunk.usage;
          for (const c of chunk.choices) {
            generated += (c.delta?.content ?? "") + c.delta?.toolCalls.map((t) => t.functionArguments ?? "").join("");
          }
          const usageOnly = chunk.choices.length === 0 && chunk.usage !== undefined;
          if (!wantsUsage) chunk.usage = undefined;
          if (!(usageOnly && !wantsUsage)) yield create(StreamChatCompletionResponseSchema, { chunk });
          next = await events.next();
        }
        outcome = "ok";
        if (!usage) {
          // The upstream sent no usage although asked: count, and give the client its usage chunk if it asked.
          usage = usageOf(countPromptTokens(params), countTextTokens(generated));
          if (wantsUsage && last) {
            yield create(StreamChatCompletionResponseSchema, {
              chunk: create(ChatCompletionChunkSchema, {
                id: last.id,
                created: last.created,
                model: params.model,
                choices: [],
                usage,
                systemFingerprint: last.systemFingerprint,
              }),
            });
          }
        }
      } catch (err) {
        if (err instanceof UpstreamError) {
          if (err.failure.kind !== "aborted") outcome = "failure";
          throw toConnectError(err);
        }
        if (err instanceof SyntaxError) {
          throw rpcError(Code.Unavailable, "The model's server sent an invalid chunk.", "UPSTREAM_PROTOCOL_ERROR", {
            cause: err,
          });
        }
        throw err;
      } finally {
        lease.release(outcome);
        await events.return?.(undefined);
      }
    },
  };
}
