import { findModel } from "./context.js";
import type { GenerationParams } from "./generation.js";
import { badRequest, isRecord, optionalInt, SimulatorHttpError } from "./http.js";
import { countChatPromptTokens } from "./text.js";
import type { SimulatedModel, SimulatorOptions } from "./types.js";

/** A chat completion request checked the way vLLM checks it, with vLLM's messages. */
export interface ChatRequest {
  model: SimulatedModel;
  /** The `model` to echo in responses (the requested name). */
  modelName: string;
  promptTokens: number;
  stream: boolean;
  includeUsage: boolean;
  continuousUsage: boolean;
  generation: GenerationParams;
}

const invalid = (message: string, param: string | null = null) =>
  new SimulatorHttpError(400, message, param, "BadRequestError");

function parseStop(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === "string") return [v];
  if (Array.isArray(v) && v.every((s) => typeof s === "string")) return v;
  throw badRequest("stop: Input should be a valid string or list of strings", "stop");
}

/** The function the reply must call (tool_choice "required" or named), or null for a text reply. */
function forcedTool(body: Record<string, unknown>): { name: string; parameters: unknown } | null {
  const choice = body.tool_choice;
  if (choice === undefined || choice === null || choice === "none" || choice === "auto") return null;
  const tools = Array.isArray(body.tools) ? body.tools.filter(isRecord) : [];
  const fn = (t: Record<string, unknown>) => (isRecord(t.function) ? t.function : {});
  if (tools.length === 0) throw invalid("When using `tool_choice`, `tools` must be set.", "tool_choice");
  if (choice === "required") {
    const first = fn(tools[0] ?? {});
    return { name: String(first.name ?? "tool"), parameters: first.parameters };
  }
  if (isRecord(choice) && isRecord(choice.function) && typeof choice.function.name === "string") {
    const name = choice.function.name;
    const tool = tools.find((t) => fn(t).name === name);
    if (!tool) throw invalid(`Tool '${name}' has not been passed in \`tools\`.`, "tool_choice");
    return { name, parameters: fn(tool).parameters };
  }
  throw badRequest("tool_choice: Input should be 'none', 'auto', 'required' or a named function", "tool_choice");
}

export function parseChatRequest(body: unknown, opts: SimulatorOptions): ChatRequest {
  if (!isRecord(body)) throw badRequest("Input should be a valid dictionary or object to extract fields from");
  const model = findModel(opts, body.model, "chat");
  const messages = body.messages;
  if (!Array.isArray(messages)) throw badRequest("messages: Field required (a list of messages)", "messages");
  if (messages.length === 0) throw invalid("messages must contain at least one message.", "messages");

  const n = optionalInt(body, "n") ?? 1;
  if (n < 1) throw invalid(`n must be at least 1, got ${n}.`, "n");
  const maxTokens = optionalInt(body, "max_completion_tokens") ?? optionalInt(body, "max_tokens");
  if (maxTokens !== undefined && maxTokens < 1) {
    throw invalid(`max_tokens must be at least 1, got ${maxTokens}.`, "max_tokens");
  }
  const promptTokens = countChatPromptTokens(messages, body.tools);
  if (promptTokens >= model.maxModelLen) {
    throw invalid(
      `This model's maximum context length is ${model.maxModelLen} tokens. However, your request has ` +
        `${promptTokens} input tokens. Please reduce the length of the input messages.`,
      "input_tokens",
    );
  }
  if (maxTokens !== undefined && promptTokens + maxTokens > model.maxModelLen) {
    throw invalid(
      `'max_tokens' or 'max_completion_tokens' is too large: ${maxTokens}. This model's maximum context length is ` +
        `${model.maxModelLen} tokens and your request has ${promptTokens} input tokens ` +
        `(${maxTokens} > ${model.maxModelLen} - ${promptTokens}).`,
      "max_tokens",
    );
  }
  const limit = maxTokens ?? model.maxModelLen - promptTokens;
  const minTokens = optionalInt(body, "min_tokens") ?? 0;
  const natural = body.ignore_eos === true ? limit : Math.max(opts.completionTokens, minTokens);

  const logprobs = body.logprobs === true;
  const topLogprobs = optionalInt(body, "top_logprobs") ?? 0;
  if (topLogprobs < 0 || topLogprobs > 20) {
    throw invalid(`top_logprobs must be between 0 and 20, got ${topLogprobs}.`, "top_logprobs");
  }
  if (topLogprobs > 0 && !logprobs) {
    throw invalid("when using `top_logprobs`, `logprobs` must be set to true.", "top_logprobs");
  }

  const stream = body.stream === true;
  const streamOptions = body.stream_options;
  if (streamOptions !== undefined && streamOptions !== null && !stream) {
    throw invalid("Stream options can only be defined when `stream=True`.", "stream_options");
  }
  const so = isRecord(streamOptions) ? streamOptions : {};
  const seed = optionalInt(body, "seed");

  return {
    model,
    modelName: typeof body.model === "string" ? body.model : model.id,
    promptTokens,
    stream,
    includeUsage: so.include_usage === true,
    continuousUsage: so.include_usage === true && so.continuous_usage_stats === true,
    generation: {
      seedText: `${JSON.stringify(messages)}\u0000${seed ?? ""}`,
      n,
      natural,
      limit,
      stop: parseStop(body.stop),
      tool: forcedTool(body),
      logprobs,
      topLogprobs,
    },
  };
}
