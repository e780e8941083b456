import { clone, create } from "@bufbuild/protobuf";
import {
  type ChatCompletionParams,
  ChatCompletionParamsSchema,
  type ChatMessage,
  Role,
} from "../../gen/passerelle/inference/v1/chat_pb.js";
import {
  type SearchRequest,
  SearchRequestSchema,
  type SearchResult,
} from "../../gen/passerelle/search/v1/search_service_pb.js";
import type { Principal } from "../platform/context.js";
import { invalidArgument } from "../platform/errors.js";

/** Runs a search for a user (the SearchService, called in this process). */
export type Retrieve = (principal: Principal, request: SearchRequest, signal: AbortSignal) => Promise<SearchResult[]>;

/**
 * The default instructions around retrieved chunks (PASSERELLE_RAG_PROMPT_TEMPLATE overrides them). In French and
 * English, since most questions asked here are French; the model answers in the question's language.
 */
export const DEFAULT_SEARCH_TEMPLATE = `Answer the question using only the documents below. If they do not contain the answer, say so. Answer in the language of the question.
Réponds à la question en t'appuyant uniquement sur les documents ci-dessous ; s'ils ne contiennent pas la réponse, dis-le.

Question: {prompt}

Documents:
{chunks}`;

export function checkTemplate(template: string, param: string): string {
  if (!template.includes("{prompt}") || !template.includes("{chunks}"))
    throw invalidArgument(`'${param}' must contain {prompt} and {chunks}.`, param);
  if (template.length > 16_384) throw invalidArgument(`'${param}' is longer than 16,384 characters.`, param);
  return template;
}

/** The text of a message: its text, or its text parts joined. */
function textOf(m: ChatMessage): string {
  if (m.content.case === "text") return m.content.value;
  if (m.content.case === "parts")
    return m.content.value.parts
      .map((p) => (p.part.case === "text" ? p.part.value : ""))
      .filter(Boolean)
      .join("\n");
  return "";
}

/**
 * The gateway's `search` tool: finds it among the request's tools, searches the collections it names with the last
 * user message, and rewrites that message with the chunks found through the template. The tool is never forwarded
 * (upstreams do not know it); when it was the only tool, `tool_choice` and `parallel_tool_calls` go too, since they
 * make no sense without tools. No chunk found → the request goes unchanged. Returns the params to send and what
 * was retrieved (for `search_results`).
 */
export async function applySearchTool(
  params: ChatCompletionParams,
  principal: Principal,
  retrieve: Retrieve | undefined,
  signal: AbortSignal,
  defaultTemplate: string,
): Promise<{ params: ChatCompletionParams; results: SearchResult[] | undefined }> {
  const index = params.tools.findIndex((t) => t.type === "search");
  if (index < 0) return { params, results: undefined };
  if (params.tools.filter((t) => t.type === "search").length > 1)
    throw invalidArgument("Only one 'search' tool may be given.", "tools");
  const tool = params.tools[index];
  if (!retrieve)
    throw invalidArgument("The 'search' tool is not enabled on this server.", `tools[${index}]`, "RAG_NOT_CONFIGURED");
  const template = tool?.search?.template
    ? checkTemplate(tool.search.template, `tools[${index}].template`)
    : defaultTemplate;
  const lastUser = params.messages.findLastIndex((m) => m.role === Role.USER);
  if (lastUser < 0) throw invalidArgument("The 'search' tool needs a user message to search for.", "messages");
  const query = textOf(params.messages[lastUser] as ChatMessage).trim();
  if (!query) throw invalidArgument("The last user message has no text to search for.", "messages");

  const asked = tool?.search?.request;
  const request = asked ? clone(SearchRequestSchema, asked) : create(SearchRequestSchema);
  request.query = query.slice(0, 8_192);
  const results = await retrieve(principal, request, signal);

  const out = clone(ChatCompletionParamsSchema, params);
  out.tools.splice(index, 1);
  if (out.tools.length === 0) {
    out.toolChoice = undefined;
    out.parallelToolCalls = undefined;
  }
  if (results.length > 0) {
    const chunks = results.map((r) => r.chunk?.content ?? "").join("\n\n");
    const message = out.messages[lastUser] as ChatMessage;
    // One pass, so that a `{chunks}` inside the question is not expanded.
    const text = template.replace(/\{prompt\}|\{chunks\}/g, (m) => (m === "{prompt}" ? query : chunks));
    message.content = { case: "text", value: text };
  }
  return { params: out, results };
}
