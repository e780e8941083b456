import { create, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import {
  type ChatCompletionParams,
  type ChatMessage,
  type ContentPart,
  ResponseFormatSchema,
  Role,
  StreamOptionsSchema,
  type ToolCall,
  ToolCallSchema,
  ToolChoiceSchema,
  ToolSchema,
} from "../../gen/passerelle/inference/v1/chat_pb.js";
import { InvalidRequest } from "./invalid-request.js";
import { searchToolFromJson } from "./search-tool.js";

/**
 * Pure translations of OpenAI's chat requests into the inference protos, at the REST edge (answers: chat-response.ts).
 * Known fields become typed proto fields; every other field (vendor extras such as vLLM's `top_k`) travels in an
 * `extra` Struct and comes out again unchanged, at the same place. Nothing is added that the client did not send.
 */

export { InvalidRequest };

const ROLES: Record<string, Role> = {
  system: Role.SYSTEM,
  developer: Role.DEVELOPER,
  user: Role.USER,
  assistant: Role.ASSISTANT,
  tool: Role.TOOL,
  function: Role.FUNCTION,
};
/** Role names by enum value: what answers say (chat-response.ts). */
export const ROLE_NAMES = new Map(Object.entries(ROLES).map(([n, r]) => [r, n]));

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function str(v: unknown, param: string): string {
  if (typeof v !== "string") throw new InvalidRequest(`'${param}' must be a string.`, param);
  return v;
}
function optStr(v: unknown, param: string): string | undefined {
  return v == null ? undefined : str(v, param);
}
function num(v: unknown, param: string): number | undefined {
  if (v == null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) throw new InvalidRequest(`'${param}' must be a number.`, param);
  return v;
}
function uint(v: unknown, param: string): number | undefined {
  const n = num(v, param);
  if (n !== undefined && (!Number.isInteger(n) || n < 0 || n > 0xffffffff)) {
    throw new InvalidRequest(`'${param}' must be a non-negative integer.`, param);
  }
  return n;
}
function bool(v: unknown, param: string): boolean | undefined {
  if (v == null) return undefined;
  if (typeof v !== "boolean") throw new InvalidRequest(`'${param}' must be a boolean.`, param);
  return v;
}
function obj(v: unknown, param: string): JsonObject | undefined {
  if (v == null) return undefined;
  if (!isObject(v)) throw new InvalidRequest(`'${param}' must be an object.`, param);
  return v as JsonObject;
}
/** The keys of `o` not in `known`, or undefined when there are none. */
function rest(o: Record<string, unknown>, known: ReadonlySet<string>): JsonObject | undefined {
  let out: JsonObject | undefined;
  for (const [k, v] of Object.entries(o)) {
    if (known.has(k) || v === undefined) continue;
    out ??= {};
    out[k] = v as JsonValue;
  }
  return out;
}

const PARAM_KEYS = new Set([
  "model",
  "messages",
  "temperature",
  "top_p",
  "n",
  "stop",
  "max_tokens",
  "max_completion_tokens",
  "presence_penalty",
  "frequency_penalty",
  "logit_bias",
  "logprobs",
  "top_logprobs",
  "seed",
  "user",
  "tools",
  "tool_choice",
  "parallel_tool_calls",
  "response_format",
  "stream",
  "stream_options",
]);
const MESSAGE_KEYS = new Set(["role", "content", "name", "tool_calls", "tool_call_id", "refusal"]);
const TOOL_KEYS = new Set(["type", "function"]);

function message(v: unknown, i: number): ChatMessage {
  const p = `messages[${i}]`;
  if (!isObject(v)) throw new InvalidRequest(`'${p}' must be an object.`, p);
  const role = ROLES[str(v.role, `${p}.role`)];
  if (role === undefined) {
    throw new InvalidRequest(`'${p}.role' must be one of ${Object.keys(ROLES).join(", ")}.`, `${p}.role`);
  }
  // Literals of the generated types rather than create(): this runs for every message of every request.
  const m: ChatMessage = {
    $typeName: "passerelle.inference.v1.ChatMessage",
    role,
    content: { case: undefined },
    name: optStr(v.name, `${p}.name`),
    toolCalls: [],
    toolCallId: optStr(v.tool_call_id, `${p}.tool_call_id`),
    refusal: optStr(v.refusal, `${p}.refusal`),
    extra: rest(v, MESSAGE_KEYS),
  };
  const c = v.content;
  if (typeof c === "string") m.content = { case: "text", value: c };
  else if (Array.isArray(c))
    m.content = {
      case: "parts",
      value: {
        $typeName: "passerelle.inference.v1.ContentParts",
        parts: c.map((part, j) => contentPart(part, `${p}.content[${j}]`)),
      },
    };
  else if (c != null) throw new InvalidRequest(`'${p}.content' must be a string or an array of parts.`, `${p}.content`);
  if (v.tool_calls != null) {
    if (!Array.isArray(v.tool_calls))
      throw new InvalidRequest(`'${p}.tool_calls' must be an array.`, `${p}.tool_calls`);
    m.toolCalls = v.tool_calls.map((tc, j) => toolCall(tc, `${p}.tool_calls[${j}]`));
  }
  return m;
}

const PART = "passerelle.inference.v1.ContentPart";

function contentPart(v: unknown, p: string): ContentPart {
  if (!isObject(v)) throw new InvalidRequest(`'${p}' must be an object.`, p);
  const type = str(v.type, `${p}.type`);
  const keys = Object.keys(v);
  if (type === "text" && keys.every((k) => k === "type" || k === "text")) {
    return { $typeName: PART, part: { case: "text", value: str(v.text, `${p}.text`) } };
  }
  if (type === "image_url" && keys.every((k) => k === "type" || k === "image_url") && isObject(v.image_url)) {
    const iu = v.image_url;
    if (Object.keys(iu).every((k) => k === "url" || k === "detail")) {
      return {
        $typeName: PART,
        part: {
          case: "imageUrl",
          value: {
            $typeName: "passerelle.inference.v1.ImageUrl",
            url: str(iu.url, `${p}.image_url.url`),
            detail: optStr(iu.detail, `${p}.image_url.detail`),
          },
        },
      };
    }
  }
  // Any other part, or a known one with extra fields: forwarded exactly as sent.
  return { $typeName: PART, part: { case: "other", value: v as JsonObject } };
}

function toolCall(v: unknown, p: string): ToolCall {
  if (!isObject(v)) throw new InvalidRequest(`'${p}' must be an object.`, p);
  const f = obj(v.function, `${p}.function`) ?? {};
  return create(ToolCallSchema, {
    id: str(v.id, `${p}.id`),
    type: optStr(v.type, `${p}.type`) ?? "function",
    function: {
      name: str(f.name, `${p}.function.name`),
      arguments: str(f.arguments, `${p}.function.arguments`),
    },
  });
}

/** Reads an OpenAI chat request body. Throws InvalidRequest for what cannot be read. */
export function chatParamsFromJson(body: unknown): { params: ChatCompletionParams; stream: boolean } {
  if (!isObject(body)) throw new InvalidRequest("The request body must be a JSON object.", "body");
  const model = str(body.model, "model");
  if (!model) throw new InvalidRequest("'model' must not be empty.", "model");
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    throw new InvalidRequest("'messages' must be a non-empty array.", "messages");
  }
  const stream = bool(body.stream, "stream") ?? false;
  const params: ChatCompletionParams = {
    $typeName: "passerelle.inference.v1.ChatCompletionParams",
    model,
    messages: body.messages.map(message),
    stop: [],
    logitBias: {},
    tools: [],
    temperature: num(body.temperature, "temperature"),
    topP: num(body.top_p, "top_p"),
    n: uint(body.n, "n"),
    maxTokens: uint(body.max_tokens, "max_tokens"),
    maxCompletionTokens: uint(body.max_completion_tokens, "max_completion_tokens"),
    presencePenalty: num(body.presence_penalty, "presence_penalty"),
    frequencyPenalty: num(body.frequency_penalty, "frequency_penalty"),
    logprobs: bool(body.logprobs, "logprobs"),
    topLogprobs: uint(body.top_logprobs, "top_logprobs"),
    user: optStr(body.user, "user"),
    parallelToolCalls: bool(body.parallel_tool_calls, "parallel_tool_calls"),
    extra: rest(body, PARAM_KEYS),
  };
  if (body.seed != null) {
    const seed = num(body.seed, "seed");
    if (seed === undefined || !Number.isSafeInteger(seed))
      throw new InvalidRequest("'seed' must be an integer.", "seed");
    params.seed = BigInt(seed);
  }
  if (body.stop != null) {
    if (typeof body.stop === "string") params.stop = [body.stop];
    else if (Array.isArray(body.stop)) params.stop = body.stop.map((s, i) => str(s, `stop[${i}]`));
    else throw new InvalidRequest("'stop' must be a string or an array of strings.", "stop");
  }
  if (body.logit_bias != null) {
    for (const [k, v] of Object.entries(obj(body.logit_bias, "logit_bias") ?? {})) {
      params.logitBias[k] = num(v, `logit_bias.${k}`) ?? 0;
    }
  }
  if (body.tools != null) {
    if (!Array.isArray(body.tools)) throw new InvalidRequest("'tools' must be an array.", "tools");
    params.tools = body.tools.map((t, i) => {
      const p = `tools[${i}]`;
      if (!isObject(t)) throw new InvalidRequest(`'${p}' must be an object.`, p);
      const type = str(t.type, `${p}.type`);
      // The gateway's own retrieval tool: typed, run by the InferenceService, never forwarded.
      if (type === "search") return create(ToolSchema, { type, search: searchToolFromJson(t as JsonObject, p) });
      const f = type === "function" ? obj(t.function, `${p}.function`) : undefined;
      if (type === "function" && !f) throw new InvalidRequest(`'${p}.function' is required.`, `${p}.function`);
      return create(ToolSchema, {
        type,
        function: f
          ? {
              name: str(f.name, `${p}.function.name`),
              description: optStr(f.description, `${p}.function.description`),
              parameters: obj(f.parameters, `${p}.function.parameters`),
              strict: bool(f.strict, `${p}.function.strict`),
            }
          : undefined,
        extra: rest(t, TOOL_KEYS),
      });
    });
  }
  if (body.tool_choice != null) {
    const tc = body.tool_choice;
    if (typeof tc === "string") params.toolChoice = create(ToolChoiceSchema, { choice: { case: "mode", value: tc } });
    else if (isObject(tc) && isObject(tc.function)) {
      params.toolChoice = create(ToolChoiceSchema, {
        choice: { case: "functionName", value: str(tc.function.name, "tool_choice.function.name") },
      });
    } else throw new InvalidRequest("'tool_choice' must be a string or {type, function:{name}}.", "tool_choice");
  }
  if (body.response_format != null) {
    const rf = obj(body.response_format, "response_format") ?? {};
    const js = obj(rf.json_schema, "response_format.json_schema");
    params.responseFormat = create(ResponseFormatSchema, {
      type: str(rf.type, "response_format.type"),
      jsonSchema: js
        ? {
            name: str(js.name, "response_format.json_schema.name"),
            description: optStr(js.description, "response_format.json_schema.description"),
            schema: obj(js.schema, "response_format.json_schema.schema"),
            strict: bool(js.strict, "response_format.json_schema.strict"),
          }
        : undefined,
    });
  }
  if (body.stream_options != null) {
    const so = obj(body.stream_options, "stream_options") ?? {};
    params.streamOptions = create(StreamOptionsSchema, {
      includeUsage: bool(so.include_usage, "stream_options.include_usage"),
    });
  }
  return { params, stream };
}
