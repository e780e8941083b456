import { create } from "@bufbuild/protobuf";
import {
  type ChatCompletion,
  type ChatCompletionParams,
  type ChatMessage,
  type Usage,
  UsageSchema,
} from "../../gen/passerelle/inference/v1/chat_pb.js";
import { countTokens } from "../platform/tokenizer.js";

/**
 * Token counts for when an upstream sends no `usage`, and for estimates: cl100k (platform/tokenizer.ts) and OpenAI's chat
 * framing (3 tokens per message, 3 to prime the answer). An estimate — the model's own tokenizer may differ — used
 * only as a fallback; upstream counts always win.
 */
const PER_MESSAGE = 3;
const PRIMING = 3;

function messageText(m: ChatMessage): string {
  let text = m.name ?? "";
  if (m.content.case === "text") text += m.content.value;
  else if (m.content.case === "parts") {
    for (const p of m.content.value.parts) if (p.part.case === "text") text += p.part.value;
  }
  for (const tc of m.toolCalls) text += (tc.function?.name ?? "") + (tc.function?.arguments ?? "");
  return text;
}

export function countPromptTokens(p: ChatCompletionParams): number {
  let n = PRIMING;
  for (const m of p.messages) n += PER_MESSAGE + countTokens(messageText(m));
  return n;
}

export function countTextTokens(text: string): number {
  return text ? countTokens(text) : 0;
}

export function usageOf(prompt: number, completion: number): Usage {
  return create(UsageSchema, { promptTokens: prompt, completionTokens: completion, totalTokens: prompt + completion });
}

/** The usage of a completion, counted, when the upstream gave none. */
export function countedUsage(p: ChatCompletionParams, c: ChatCompletion): Usage {
  let completion = 0;
  for (const choice of c.choices) if (choice.message) completion += countTokens(messageText(choice.message));
  return usageOf(countPromptTokens(p), completion);
}
