import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import type {
  ChatChoice,
  ChatCompletion,
  ChatCompletionChunk,
  ChatDelta,
  ChatMessage,
  ChoiceLogprobs,
  TokenLogprob,
  Usage,
} from "../../gen/passerelle/inference/v1/chat_pb.js";
import { searchResultJson } from "../mappers/collections.js";
import { ROLE_NAMES } from "./chat.js";
import { impactJson } from "./usage.js";

/** The inference protos' answers as OpenAI's chat JSON: whole completions and stream chunks. */

function usageJson(u: Usage | undefined): JsonObject | null {
  if (!u) return null;
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.totalTokens,
    ...(u.details ?? {}),
    ...impactJson(u),
  };
}

function tokenJson(t: TokenLogprob): JsonObject {
  return {
    token: t.token,
    logprob: t.logprob,
    bytes: t.bytes ? t.bytes.values : null,
    top_logprobs: t.topLogprobs.map((a) => ({
      token: a.token,
      logprob: a.logprob,
      bytes: a.bytes ? a.bytes.values : null,
    })),
  };
}

function logprobsJson(l: ChoiceLogprobs | undefined): JsonObject | null {
  if (!l) return null;
  return { content: l.content.map(tokenJson), refusal: l.refusal.length ? l.refusal.map(tokenJson) : null };
}

function messageJson(m: ChatMessage | undefined): JsonObject {
  if (!m) return { role: "assistant", content: null, refusal: null };
  const out: JsonObject = {
    role: ROLE_NAMES.get(m.role) ?? "assistant",
    content: m.content.case === "text" ? m.content.value : null,
    refusal: m.refusal ?? null,
  };
  if (m.toolCalls.length) {
    out.tool_calls = m.toolCalls.map((tc) => ({
      id: tc.id,
      type: tc.type,
      function: { name: tc.function?.name ?? "", arguments: tc.function?.arguments ?? "" },
    }));
  }
  return { ...out, ...(m.extra ?? {}) };
}

function choiceJson(c: ChatChoice): JsonObject {
  return {
    index: c.index,
    message: messageJson(c.message),
    finish_reason: c.finishReason,
    logprobs: logprobsJson(c.logprobs),
    ...(c.extra ?? {}),
  };
}

/** A whole completion as OpenAI's `chat.completion` object. */
export function chatCompletionJson(c: ChatCompletion): JsonObject {
  const out: JsonObject = {
    id: c.id,
    object: "chat.completion",
    created: Number(c.created),
    model: c.model,
    choices: c.choices.map(choiceJson),
    usage: usageJson(c.usage),
    ...(c.systemFingerprint === undefined ? {} : { system_fingerprint: c.systemFingerprint }),
  };
  if (c.searchResults.length > 0) out.search_results = c.searchResults.map(searchResultJson) as JsonValue;
  return { ...out, ...(c.extra ?? {}) };
}

/** A chunk's delta as OpenAI writes it: only the fields the model sent, then vendor fields. */
function deltaJson(d: ChatDelta | undefined): JsonObject {
  const delta: JsonObject = {};
  if (d?.role !== undefined) delta.role = ROLE_NAMES.get(d.role) ?? "assistant";
  if (d?.content !== undefined) delta.content = d.content;
  if (d?.refusal !== undefined) delta.refusal = d.refusal;
  if (d?.toolCalls.length) {
    delta.tool_calls = d.toolCalls.map((t) => {
      const tc: JsonObject = { index: t.index };
      if (t.id !== undefined) tc.id = t.id;
      if (t.type !== undefined) tc.type = t.type;
      const f: JsonObject = {};
      if (t.functionName !== undefined) f.name = t.functionName;
      if (t.functionArguments !== undefined) f.arguments = t.functionArguments;
      tc.function = f;
      return tc;
    });
  }
  if (d?.extra) Object.assign(delta, d.extra);
  return delta;
}

/**
 * One chunk as OpenAI's `chat.completion.chunk` object. `nullUsage`: the client asked for usage
 * (`stream_options.include_usage`), so every chunk without it says `"usage": null`, as OpenAI's do.
 */
export function chatChunkJson(c: ChatCompletionChunk, nullUsage = false): JsonObject {
  const out: JsonObject = {
    id: c.id,
    object: "chat.completion.chunk",
    created: Number(c.created),
    model: c.model,
    choices: c.choices.map((ch) => {
      const choice: JsonObject = {
        index: ch.index,
        delta: deltaJson(ch.delta),
        finish_reason: ch.finishReason ?? null,
        logprobs: logprobsJson(ch.logprobs),
      };
      // Assigned onto the fresh objects rather than spread into copies: once per streamed token.
      if (ch.extra) Object.assign(choice, ch.extra);
      return choice;
    }),
  };
  if (c.usage) out.usage = usageJson(c.usage);
  else if (nullUsage) out.usage = null;
  if (c.systemFingerprint !== undefined) out.system_fingerprint = c.systemFingerprint;
  if (c.searchResults.length > 0) out.search_results = c.searchResults.map(searchResultJson) as JsonValue;
  return out;
}

/** The fields chatChunkJson writes on a choice. */
const CHOICE_FIELDS = new Set(["index", "delta", "finish_reason", "logprobs"]);

/** The reference text of a chunk, which the serializer below must equal. */
function whole(c: ChatCompletionChunk, nullUsage: boolean): string {
  return JSON.stringify(chatChunkJson(c, nullUsage));
}

/** A JSON number as JSON.stringify writes it (non-finite numbers are null). */
function num(x: number): string {
  return Number.isFinite(x) ? String(x) : "null";
}

/**
 * Serializes a stream's chunks to exactly the text `JSON.stringify(chatChunkJson(chunk, nullUsage))` gives, faster for the
 * chunk every token is: one choice, no usage. The chunk's opening (`id`, `object`, `created`, `model`), the same in
 * every chunk of a stream, is written once and reused while it does not change; the choice is written field by field
 * in chatChunkJson's order, its delta too when it holds only text. Anything else (several choices, usage, search
 * results) goes through chatChunkJson. One serializer per stream. Measured: ~0.2 µs per token chunk instead of
 * ~1.5–2 µs, and no intermediate objects.
 */
export function createChunkSerializer(nullUsage = false): (c: ChatCompletionChunk) => string {
  const usage = nullUsage ? ',"usage":null' : "";
  let id: string | undefined;
  let created = 0n;
  let model: string | undefined;
  let head = "";
  return (c) => {
    const ch = c.choices[0];
    if (c.choices.length !== 1 || !ch || c.usage || c.searchResults.length > 0) return whole(c, nullUsage);
    if (c.id !== id || c.created !== created || c.model !== model) {
      id = c.id;
      created = c.created;
      model = c.model;
      head = `{"id":${JSON.stringify(c.id)},"object":"chat.completion.chunk","created":${num(Number(c.created))},"model":${JSON.stringify(c.model)},"choices":[`;
    }
    const d = ch.delta;
    const textOnly =
      d !== undefined &&
      d.role === undefined &&
      d.refusal === undefined &&
      d.toolCalls.length === 0 &&
      d.extra === undefined &&
      d.content !== undefined;
    const delta = textOnly ? `{"content":${JSON.stringify(d.content)}}` : JSON.stringify(deltaJson(d));
    let extra = "";
    // What Object.assign copies in chatChunkJson: own enumerable fields (`__proto__` would set a prototype instead).
    // Left to chatChunkJson: a vendor field named like one of the choice's own (it would replace it in place), and
    // one named like an array index (an object lists those first).
    const x = ch.extra;
    if (x) {
      for (const k in x) {
        const v = x[k];
        if (v === undefined || k === "__proto__" || !Object.hasOwn(x, k)) continue;
        if (CHOICE_FIELDS.has(k) || (k.charCodeAt(0) >= 48 && k.charCodeAt(0) <= 57)) {
          return whole(c, nullUsage);
        }
        extra += `,${JSON.stringify(k)}:${JSON.stringify(v)}`;
      }
    }
    const tail =
      c.systemFingerprint === undefined
        ? `]${usage}}`
        : `]${usage},"system_fingerprint":${JSON.stringify(c.systemFingerprint)}}`;
    return `${head}{"index":${num(ch.index)},"delta":${delta},"finish_reason":${ch.finishReason === undefined ? "null" : JSON.stringify(ch.finishReason)},"logprobs":${JSON.stringify(logprobsJson(ch.logprobs))}${extra}}${tail}`;
  };
}
