import { create, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import {
  type ChatChoice,
  type ChatChunkChoice,
  type ChatCompletion,
  type ChatCompletionChunk,
  type ChatCompletionParams,
  type ChatDelta,
  type ChatMessage,
  type ChoiceLogprobs,
  ChoiceLogprobsSchema,
  type ContentPart,
  Role,
  type TokenLogprob,
  TokenLogprobSchema,
  type ToolCallDelta,
  type Usage,
} from "../../gen/passerelle/inference/v1/chat_pb.js";

/**
 * Pure translations between the inference protos and the OpenAI-compatible JSON that upstreams (vLLM, …) speak.
 * The request carries exactly the fields the client set; upstream answers keep fields we do not model in `extra`.
 */

const ROLE_NAMES: Record<Role, string> = {
  [Role.UNSPECIFIED]: "user",
  [Role.SYSTEM]: "system",
  [Role.DEVELOPER]: "developer",
  [Role.USER]: "user",
  [Role.ASSISTANT]: "assistant",
  [Role.TOOL]: "tool",
  [Role.FUNCTION]: "function",
};
const ROLES = new Map(Object.entries(ROLE_NAMES).map(([r, n]) => [n, Number(r) as Role]));

function partJson(p: ContentPart): JsonValue {
  switch (p.part.case) {
    case "text":
      return { type: "text", text: p.part.value };
    case "imageUrl":
      return {
        type: "image_url",
        image_url: {
          url: p.part.value.url,
          ...(p.part.value.detail === undefined ? {} : { detail: p.part.value.detail }),
        },
      };
    case "other":
      return p.part.value;
    default:
      return { type: "text", text: "" };
  }
}

function messageJson(m: ChatMessage): JsonObject {
  const out: JsonObject = { role: ROLE_NAMES[m.role] };
  if (m.content.case === "text") out.content = m.content.value;
  else if (m.content.case === "parts") out.content = m.content.value.parts.map(partJson);
  else out.content = null;
  if (m.name !== undefined) out.name = m.name;
  if (m.toolCalls.length) {
    out.tool_calls = m.toolCalls.map((tc) => ({
      id: tc.id,
      type: tc.type,
      function: { name: tc.function?.name ?? "", arguments: tc.function?.arguments ?? "" },
    }));
  }
  if (m.toolCallId !== undefined) out.tool_call_id = m.toolCallId;
  if (m.refusal !== undefined) out.refusal = m.refusal;
  return m.extra ? { ...out, ...m.extra } : out;
}

/**
 * The body sent upstream. `stream` upstream calls always ask for usage (the gateway needs the counts); the
 * caller strips the usage chunk when the client did not ask for it.
 */
export function upstreamChatBody(p: ChatCompletionParams, upstreamModel: string, stream: boolean): JsonObject {
  const b: JsonObject = { ...(p.extra ?? {}), model: upstreamModel, messages: p.messages.map(messageJson) };
  if (p.temperature !== undefined) b.temperature = p.temperature;
  if (p.topP !== undefined) b.top_p = p.topP;
  if (p.n !== undefined) b.n = p.n;
  if (p.stop.length) b.stop = p.stop;
  if (p.maxTokens !== undefined) b.max_tokens = p.maxTokens;
  if (p.maxCompletionTokens !== undefined) b.max_completion_tokens = p.maxCompletionTokens;
  if (p.presencePenalty !== undefined) b.presence_penalty = p.presencePenalty;
  if (p.frequencyPenalty !== undefined) b.frequency_penalty = p.frequencyPenalty;
  if (Object.keys(p.logitBias).length) b.logit_bias = { ...p.logitBias };
  if (p.logprobs !== undefined) b.logprobs = p.logprobs;
  if (p.topLogprobs !== undefined) b.top_logprobs = p.topLogprobs;
  if (p.seed !== undefined) b.seed = Number(p.seed);
  if (p.user !== undefined) b.user = p.user;
  if (p.tools.length) {
    b.tools = p.tools.map((t) => {
      const tool: JsonObject = { ...(t.extra ?? {}), type: t.type };
      if (t.function) {
        const f: JsonObject = { name: t.function.name };
        if (t.function.description !== undefined) f.description = t.function.description;
        if (t.function.parameters !== undefined) f.parameters = t.function.parameters;
        if (t.function.strict !== undefined) f.strict = t.function.strict;
        tool.function = f;
      }
      return tool;
    });
  }
  const tc = p.toolChoice?.choice;
  if (tc?.case === "mode") b.tool_choice = tc.value;
  else if (tc?.case === "functionName") b.tool_choice = { type: "function", function: { name: tc.value } };
  if (p.parallelToolCalls !== undefined) b.parallel_tool_calls = p.parallelToolCalls;
  if (p.responseFormat) {
    const rf: JsonObject = { type: p.responseFormat.type };
    const js = p.responseFormat.jsonSchema;
    if (js) {
      const s: JsonObject = { name: js.name };
      if (js.description !== undefined) s.description = js.description;
      if (js.schema !== undefined) s.schema = js.schema;
      if (js.strict !== undefined) s.strict = js.strict;
      rf.json_schema = s;
    }
    b.response_format = rf;
  }
  if (stream) {
    b.stream = true;
    b.stream_options = { include_usage: true };
  } else {
    delete b.stream;
    delete b.stream_options;
  }
  return b;
}

// ---------------------------------------------------------------- upstream answers

const isObject = (v: unknown): v is Record<string, JsonValue> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const n = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);
const s = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

/**
 * Fields of an upstream answer that we do not model, kept to be passed on. Nulls are dropped: for OpenAI clients a
 * null is an absent field, and vLLM sends some that OpenAI's schema rejects (`annotations: null`, `function_call:
 * null`, …).
 */
function restOf(o: Record<string, JsonValue>, known: ReadonlySet<string>): JsonObject | undefined {
  let out: JsonObject | undefined;
  // for…in, not Object.entries: this runs on every streamed chunk, and entries() allocated an array per field (half
  // a kilobyte per chunk). `o` comes from JSON.parse: a plain object, nothing enumerable on its prototype.
  for (const k in o) {
    const v = o[k] as JsonValue;
    if (known.has(k) || v === null || !Object.hasOwn(o, k)) continue;
    out ??= {};
    out[k] = v;
  }
  return out;
}

const USAGE_KEYS = new Set(["prompt_tokens", "completion_tokens", "total_tokens"]);

const MAX_UINT32 = 0xffff_ffff;

/** A token count as the Usage proto holds it (uint32); `undefined` for anything else (10.5, -5, "10", 2^40). */
function tokenCount(v: unknown): number | undefined {
  return Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= MAX_UINT32 ? (v as number) : undefined;
}

/**
 * The upstream's usage, or `undefined` when it sent none or a count that is not a token count: governance settles
 * limits and bills from these numbers, so a broken count makes the caller count the tokens itself (as when the
 * upstream sends no usage) rather than pass it on. An absent count reads as 0.
 */
export function usageFromJson(v: unknown): Usage | undefined {
  if (!isObject(v)) return undefined;
  const prompt = v.prompt_tokens == null ? 0 : tokenCount(v.prompt_tokens);
  const completion = v.completion_tokens == null ? 0 : tokenCount(v.completion_tokens);
  if (prompt === undefined || completion === undefined) return undefined;
  const details = restOf(v, USAGE_KEYS);
  return {
    $typeName: "passerelle.inference.v1.Usage",
    promptTokens: prompt,
    completionTokens: completion,
    totalTokens: tokenCount(v.total_tokens) || Math.min(prompt + completion, MAX_UINT32),
    details,
  };
}

function tokenFromJson(v: unknown): TokenLogprob {
  const o = isObject(v) ? v : {};
  const bytes = Array.isArray(o.bytes)
    ? { $typeName: "passerelle.inference.v1.TokenBytes" as const, values: o.bytes.map(n) }
    : undefined;
  return create(TokenLogprobSchema, {
    token: s(o.token) ?? "",
    logprob: n(o.logprob),
    bytes,
    topLogprobs: Array.isArray(o.top_logprobs)
      ? o.top_logprobs.map((a) => {
          const t = isObject(a) ? a : {};
          return {
            $typeName: "passerelle.inference.v1.TopLogprob" as const,
            token: s(t.token) ?? "",
            logprob: n(t.logprob),
            bytes: Array.isArray(t.bytes)
              ? { $typeName: "passerelle.inference.v1.TokenBytes" as const, values: t.bytes.map(n) }
              : undefined,
          };
        })
      : [],
  });
}

function logprobsFromJson(v: unknown): ChoiceLogprobs | undefined {
  if (!isObject(v)) return undefined;
  return create(ChoiceLogprobsSchema, {
    content: Array.isArray(v.content) ? v.content.map(tokenFromJson) : [],
    refusal: Array.isArray(v.refusal) ? v.refusal.map(tokenFromJson) : [],
  });
}

const MESSAGE_KEYS = new Set(["role", "content", "tool_calls", "refusal", "name", "tool_call_id"]);

function messageFromJson(v: unknown): ChatMessage {
  const o = isObject(v) ? v : {};
  return {
    $typeName: "passerelle.inference.v1.ChatMessage",
    role: ROLES.get(s(o.role) ?? "assistant") ?? Role.ASSISTANT,
    content: typeof o.content === "string" ? { case: "text", value: o.content } : { case: undefined },
    toolCalls: Array.isArray(o.tool_calls)
      ? o.tool_calls.map((tc) => {
          const t = isObject(tc) ? tc : {};
          const f = isObject(t.function) ? t.function : {};
          return {
            $typeName: "passerelle.inference.v1.ToolCall" as const,
            id: s(t.id) ?? "",
            type: s(t.type) ?? "function",
            function: {
              $typeName: "passerelle.inference.v1.FunctionCall" as const,
              name: s(f.name) ?? "",
              arguments: s(f.arguments) ?? "",
            },
          };
        })
      : [],
    refusal: s(o.refusal),
    extra: restOf(o, MESSAGE_KEYS),
  };
}

const CHOICE_KEYS = new Set(["index", "message", "finish_reason", "logprobs"]);
const COMPLETION_KEYS = new Set(["id", "object", "created", "model", "choices", "usage", "system_fingerprint"]);

/** An upstream `chat.completion`, renamed to the public model (a literal, as `chunkFromJson` explains). */
export function completionFromJson(v: unknown, publicModel: string): ChatCompletion {
  const o = isObject(v) ? v : {};
  return {
    $typeName: "passerelle.inference.v1.ChatCompletion",
    id: s(o.id) ?? "",
    created: BigInt(Math.trunc(n(o.created))),
    model: publicModel,
    choices: Array.isArray(o.choices)
      ? o.choices.map((c): ChatChoice => {
          const ch = isObject(c) ? c : {};
          return {
            $typeName: "passerelle.inference.v1.ChatChoice",
            index: n(ch.index),
            message: messageFromJson(ch.message),
            finishReason: s(ch.finish_reason) ?? "stop",
            logprobs: logprobsFromJson(ch.logprobs),
            extra: restOf(ch, CHOICE_KEYS),
          };
        })
      : [],
    usage: usageFromJson(o.usage),
    systemFingerprint: s(o.system_fingerprint),
    extra: restOf(o, COMPLETION_KEYS),
    searchResults: [],
  };
}

const DELTA_KEYS = new Set(["role", "content", "tool_calls", "refusal"]);

const CHUNK_CHOICE_KEYS = new Set(["index", "delta", "finish_reason", "logprobs", "stop_reason"]);

function deltaFromJson(d: Record<string, JsonValue>): ChatDelta {
  return {
    $typeName: "passerelle.inference.v1.ChatDelta",
    role: typeof d.role === "string" ? ROLES.get(d.role) : undefined,
    content: typeof d.content === "string" ? d.content : undefined,
    refusal: typeof d.refusal === "string" ? d.refusal : undefined,
    toolCalls: Array.isArray(d.tool_calls)
      ? d.tool_calls.map((tc): ToolCallDelta => {
          const t = isObject(tc) ? tc : {};
          const f = isObject(t.function) ? t.function : {};
          return {
            $typeName: "passerelle.inference.v1.ToolCallDelta",
            index: n(t.index),
            id: s(t.id),
            type: s(t.type),
            functionName: s(f.name),
            functionArguments: s(f.arguments),
          };
        })
      : [],
    extra: restOf(d, DELTA_KEYS),
  };
}

/**
 * An upstream `chat.completion.chunk`, renamed to the public model. Built as a literal of the generated type (every
 * field, so the compiler checks it against the schema) rather than through `create()`: this runs once per streamed
 * token, and `create()`'s reflection cost more than the rest of the conversion.
 */
export function chunkFromJson(v: unknown, publicModel: string): ChatCompletionChunk {
  const o = isObject(v) ? v : {};
  return {
    $typeName: "passerelle.inference.v1.ChatCompletionChunk",
    id: s(o.id) ?? "",
    created: BigInt(Math.trunc(n(o.created))),
    model: publicModel,
    choices: Array.isArray(o.choices)
      ? o.choices.map((c): ChatChunkChoice => {
          const ch = isObject(c) ? c : {};
          return {
            $typeName: "passerelle.inference.v1.ChatChunkChoice",
            index: n(ch.index),
            delta: deltaFromJson(isObject(ch.delta) ? ch.delta : {}),
            finishReason: s(ch.finish_reason),
            logprobs: logprobsFromJson(ch.logprobs),
            extra: restOf(ch, CHUNK_CHOICE_KEYS),
          };
        })
      : [],
    usage: usageFromJson(o.usage),
    systemFingerprint: s(o.system_fingerprint),
    searchResults: [],
  };
}
