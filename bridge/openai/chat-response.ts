import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import type {
  ChatChoice,
  ChatCompletion,
  ChatCompletionChunk,
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

/** One chunk as OpenAI's `chat.completion.chunk` object. */
export function chatChunkJson(c: ChatCompletionChunk): JsonObject {
  const out: JsonObject = {
    id: c.id,
    object: "chat.completion.chunk",
    created: Number(c.created),
    model: c.model,
    choices: c.choices.map((ch) => {
      const d = ch.delta;
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
      const choice: JsonObject = {
        index: ch.index,
        delta,
        finish_reason: ch.finishReason ?? null,
        logprobs: logprobsJson(ch.logprobs),
      };
      // Assigned onto the fresh objects rather than spread into copies: once per streamed token.
      if (ch.extra) Object.assign(choice, ch.extra);
      return choice;
    }),
  };
  if (c.usage) out.usage = usageJson(c.usage);
  if (c.systemFingerprint !== undefined) out.system_fingerprint = c.systemFingerprint;
  if (c.searchResults.length > 0) out.search_results = c.searchResults.map(searchResultJson) as JsonValue;
  return out;
}
