import { type Rng, randomId, rngFrom, splitPieces, valueForSchema, wordPiece } from "./text.js";

/** What one choice of a chat completion generates, before any serialization (shared by JSON and SSE paths). */

export interface TokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

export interface ToolCallPlan {
  id: string;
  name: string;
  arguments: string;
}

export interface ChoicePlan {
  index: number;
  /** Token-sized pieces of the content (or of the tool call's arguments), in order; may contain "" pieces. */
  pieces: string[];
  /** Tokens generated (a stop string's token counts although it is cut from the text). */
  completionTokens: number;
  finishReason: "stop" | "length" | "tool_calls";
  /** vLLM's `stop_reason`: the stop string that ended the text, else null. */
  stopReason: string | null;
  toolCall: ToolCallPlan | null;
  /** One entry per piece when logprobs were asked for. */
  logprobs: TokenLogprob[] | null;
}

export interface GenerationParams {
  /** Seeds the text: the request's messages (and `seed`), so that the same request gets the same answer. */
  seedText: string;
  n: number;
  /** Tokens the model would generate on its own before its end of sequence. */
  natural: number;
  /** The most it may generate (max_tokens, or what is left of max_model_len). */
  limit: number;
  stop: string[];
  /** Non-null when the reply must be a call of this function (tool_choice required or named). */
  tool: { name: string; parameters: unknown } | null;
  logprobs: boolean;
  topLogprobs: number;
}

function logprobsFor(pieces: string[], rng: Rng, top: number): TokenLogprob[] {
  return pieces.map((token) => {
    const logprob = -Math.round(rng() * 2_000) / 1_000;
    const alternatives = [];
    for (let k = 0; k < top; k++) {
      const alt = k === 0 ? token : wordPiece(rng, !token.startsWith(" "));
      const lp = k === 0 ? logprob : logprob - 0.5 - Math.round(rng() * 4_000) / 1_000;
      alternatives.push({ token: alt, logprob: lp, bytes: [...Buffer.from(alt, "utf8")] });
    }
    return { token, logprob, bytes: [...Buffer.from(token, "utf8")], top_logprobs: alternatives };
  });
}

/** Cuts the pieces at the earliest stop string; returns the kept pieces and how many tokens were generated. */
function applyStop(
  pieces: string[],
  stop: string[],
): { pieces: string[]; generated: number; stopReason: string | null } {
  const text = pieces.join("");
  let at = -1;
  let reason: string | null = null;
  for (const s of stop) {
    if (s === "") continue;
    const i = text.indexOf(s);
    if (i >= 0 && (at < 0 || i < at)) {
      at = i;
      reason = s;
    }
  }
  if (at < 0) return { pieces, generated: pieces.length, stopReason: null };
  const kept: string[] = [];
  let offset = 0;
  for (const p of pieces) {
    if (offset + p.length <= at) {
      kept.push(p);
      offset += p.length;
      continue;
    }
    kept.push(p.slice(0, at - offset));
    break;
  }
  return { pieces: kept, generated: kept.length, stopReason: reason };
}

export function planChoices(p: GenerationParams): ChoicePlan[] {
  const choices: ChoicePlan[] = [];
  for (let index = 0; index < p.n; index++) {
    const rng = rngFrom(`${p.seedText}\u0000${index}`);
    if (p.tool) {
      const args = JSON.stringify(valueForSchema(p.tool.parameters ?? { type: "object" }, rng));
      const pieces = splitPieces(args);
      choices.push({
        index,
        pieces,
        completionTokens: pieces.length,
        finishReason: "tool_calls",
        stopReason: null,
        toolCall: { id: `chatcmpl-tool-${randomId()}`, name: p.tool.name, arguments: args },
        logprobs: p.logprobs ? logprobsFor(pieces, rng, p.topLogprobs) : null,
      });
      continue;
    }
    const count = Math.max(0, Math.min(p.natural, p.limit));
    const all: string[] = [];
    for (let i = 0; i < count; i++) all.push(wordPiece(rng, i === 0));
    const cut = applyStop(all, p.stop);
    const finishReason = cut.stopReason !== null ? "stop" : p.natural > p.limit ? "length" : "stop";
    choices.push({
      index,
      pieces: cut.pieces,
      completionTokens: cut.generated,
      finishReason,
      stopReason: cut.stopReason,
      toolCall: null,
      logprobs: p.logprobs ? logprobsFor(cut.pieces, rng, p.topLogprobs) : null,
    });
  }
  return choices;
}

/** The text of a plan (content, or tool call arguments). */
export function planText(c: ChoicePlan): string {
  return c.pieces.join("");
}
