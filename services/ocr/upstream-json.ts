import type { JsonObject } from "@bufbuild/protobuf";
import { UpstreamError } from "../inference/index.js";
import { countTokens } from "../platform/tokenizer.js";

/**
 * The instruction sent with each page. Vision models answer best with a short, concrete request; "no commentary"
 * matters, since chat-tuned models like to introduce their answer ("Here is the transcription: …").
 */
export const DEFAULT_OCR_PROMPT =
  "Transcribe this page to Markdown, faithfully and completely, in its reading order. Keep headings, lists, " +
  "emphasis and tables (as Markdown tables); write formulas in LaTeX. Do not translate, summarize, correct or " +
  "comment: answer with the page's Markdown only.";

/** Fields the gateway sets itself: a client's `extra` cannot override them. */
const OWN = new Set(["model", "messages", "stream", "stream_options"]);

/** One page's chat completion: a user message with the instruction and the page image. Non-streaming. */
export function pageChatBody(p: {
  upstreamModel: string;
  prompt: string;
  imageUrl: string;
  user?: string;
  extra?: JsonObject;
}): JsonObject {
  const body: JsonObject = {};
  for (const [k, v] of Object.entries(p.extra ?? {})) if (!OWN.has(k)) body[k] = v;
  body.model = p.upstreamModel;
  body.messages = [
    {
      role: "user",
      content: [
        { type: "text", text: p.prompt },
        { type: "image_url", image_url: { url: p.imageUrl } },
      ],
    },
  ];
  if (p.user !== undefined) body.user = p.user;
  return body;
}

/**
 * The completion tokens one page may use, for the admission's reservation: the client's `max_tokens` (or
 * `max_completion_tokens`) from the extras, else the platform's default.
 */
export function maxTokensPerPage(extra: JsonObject | undefined, fallback: number): number {
  for (const k of ["max_completion_tokens", "max_tokens"]) {
    const v = extra?.[k];
    if (typeof v === "number" && Number.isInteger(v) && v > 0) return v;
  }
  return fallback;
}

/** A whole answer wrapped in one ```markdown fence (a habit of chat models): the fence is not the page's. */
const FENCED = /^\s*```(?:markdown|md)?[ \t]*\n([\s\S]*?)\n?```\s*$/i;

export interface PageAnswer {
  markdown: string;
  promptTokens: number;
  completionTokens: number;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const count = (v: unknown) => (typeof v === "number" && Number.isInteger(v) && v >= 0 ? v : undefined);

/**
 * The page's Markdown and token counts from an upstream `chat.completion`. Without `usage` (some OpenAI-compatible
 * servers), the gateway counts: the instruction plus the image estimate, and the answer's text.
 */
export function pageFromJson(v: unknown, estimate: { prompt: string; imageTokens: number }): PageAnswer {
  const choice = isObject(v) && Array.isArray(v.choices) ? v.choices[0] : undefined;
  const message = isObject(choice) ? choice.message : undefined;
  const content = isObject(message) ? message.content : undefined;
  if (typeof content !== "string" && content !== null) {
    throw new UpstreamError({ kind: "protocol", message: "The chat completion has no message content." });
  }
  const text = content ?? "";
  const markdown = (FENCED.exec(text)?.[1] ?? text).trim();
  const usage = isObject(v) && isObject(v.usage) ? v.usage : undefined;
  const prompt = count(usage?.prompt_tokens);
  const completion = count(usage?.completion_tokens);
  return {
    markdown,
    promptTokens: prompt ?? estimate.imageTokens + countTokens(estimate.prompt),
    completionTokens: completion ?? (text ? countTokens(text) : 0),
  };
}
