import { create, fromBinary, type JsonObject, type JsonValue, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { chatParamsFromJson, InvalidRequest } from "../bridge/openai/chat.js";
import { chatChunkJson, chatCompletionJson } from "../bridge/openai/chat-response.js";
import { ChatCompletionParamsSchema } from "../gen/passerelle/inference/v1/chat_pb.js";
import { chunkFromJson, completionFromJson, upstreamChatBody } from "../services/inference/openai-json.js";
import { validateOpenAI } from "./support/openai-schema.js";

/**
 * The two halves of the chat path composed: REST JSON → proto (bridge) → binary on the wire → proto → upstream JSON
 * (service). What reaches the model server must be what the client sent: same fields, no injected default, vendor
 * extras untouched; only `model` is renamed and streaming always asks for usage.
 */
function throughGateway(body: Record<string, unknown>, upstreamModel: string, stream: boolean) {
  const { params } = chatParamsFromJson(body);
  const wire = fromBinary(ChatCompletionParamsSchema, toBinary(ChatCompletionParamsSchema, params));
  return upstreamChatBody(wire, upstreamModel, stream);
}

describe("chat request fidelity", () => {
  it("forwards a minimal request without adding anything", () => {
    const body = { model: "chat-default", messages: [{ role: "user", content: "Bonjour" }] };
    expect(throughGateway(body, "Qwen/Qwen2.5-7B-Instruct", false)).toEqual({
      model: "Qwen/Qwen2.5-7B-Instruct",
      messages: [{ role: "user", content: "Bonjour" }],
    });
  });

  it("forwards the whole OpenAI request and vendor extras unchanged", () => {
    const body = {
      model: "m",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "developer", content: "JSON only." },
        {
          role: "user",
          name: "ada",
          content: [
            { type: "text", text: "What is this?" },
            { type: "image_url", image_url: { url: "data:image/png;base64,AAAA", detail: "low" } },
            { type: "input_audio", input_audio: { data: "UklGRg==", format: "wav" } },
          ],
        },
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: "call_1", type: "function", function: { name: "lookup", arguments: '{"q":"x"}' } }],
        },
        { role: "tool", tool_call_id: "call_1", content: "42" },
        { role: "assistant", content: "ok", reasoning_content: "because" },
      ],
      temperature: 0,
      top_p: 0.9,
      n: 2,
      stop: ["\n\n", "END"],
      max_tokens: 64,
      max_completion_tokens: 128,
      presence_penalty: 0.5,
      frequency_penalty: -0.5,
      logit_bias: { "50256": -100 },
      logprobs: true,
      top_logprobs: 3,
      seed: 1234567890123,
      user: "agent-7",
      tools: [
        {
          type: "function",
          function: {
            name: "lookup",
            description: "Looks up",
            parameters: { type: "object", properties: { q: { type: "string" } }, required: ["q"] },
            strict: true,
          },
        },
      ],
      tool_choice: { type: "function", function: { name: "lookup" } },
      parallel_tool_calls: false,
      response_format: {
        type: "json_schema",
        json_schema: { name: "answer", schema: { type: "object" }, strict: true },
      },
      // vLLM extras
      top_k: 40,
      min_p: 0.05,
      repetition_penalty: 1.1,
      guided_json: { type: "object" },
      chat_template_kwargs: { enable_thinking: false },
    };
    const out = throughGateway(body, "upstream-name", false);
    expect(out).toEqual({ ...body, model: "upstream-name" });
  });

  it("streams always ask for usage; other stream options are the gateway's", () => {
    const body = { model: "m", messages: [{ role: "user", content: "x" }], stream: true };
    expect(throughGateway(body, "u", true)).toEqual({
      model: "u",
      messages: [{ role: "user", content: "x" }],
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it("keeps a string stop as a one-element list and tool_choice modes as strings", () => {
    const out = throughGateway(
      { model: "m", messages: [{ role: "user", content: "x" }], stop: "END", tool_choice: "required" },
      "u",
      false,
    );
    expect(out.stop).toEqual(["END"]);
    expect(out.tool_choice).toBe("required");
  });

  it("refuses what cannot be read, naming the field", () => {
    const bad: Array<[unknown, string]> = [
      [{ messages: [{ role: "user", content: "x" }] }, "model"],
      [{ model: "m", messages: [] }, "messages"],
      [{ model: "m", messages: [{ role: "robot", content: "x" }] }, "messages[0].role"],
      [{ model: "m", messages: [{ role: "user", content: 5 }] }, "messages[0].content"],
      [{ model: "m", messages: [{ role: "user", content: "x" }], temperature: "hot" }, "temperature"],
      [{ model: "m", messages: [{ role: "user", content: "x" }], n: -1 }, "n"],
      [{ model: "m", messages: [{ role: "user", content: "x" }], stop: 3 }, "stop"],
      [{ model: "m", messages: [{ role: "user", content: "x" }], tools: [{ type: "function" }] }, "tools[0].function"],
      [{ model: "m", messages: [{ role: "user", content: "x" }], seed: 1.5 }, "seed"],
    ];
    for (const [body, param] of bad) {
      let caught: unknown;
      try {
        chatParamsFromJson(body);
      } catch (e) {
        caught = e;
      }
      expect(caught, JSON.stringify(body)).toBeInstanceOf(InvalidRequest);
      expect((caught as InvalidRequest).param).toBe(param);
    }
  });
});

/** An upstream `chat.completion.chunk` with the given choices (and extra top-level fields). */
function upstreamChunk(choices: unknown[], extra: Record<string, unknown> = {}) {
  return { id: "c", object: "chat.completion.chunk", created: 1, model: "u", choices, ...extra };
}

describe("chat response fidelity", () => {
  const upstream = {
    id: "chatcmpl-abc",
    object: "chat.completion",
    created: 1_795_000_000,
    model: "Qwen/Qwen2.5-7B-Instruct",
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: "Bonjour !", refusal: null, tool_calls: [] },
        logprobs: {
          content: [
            {
              token: "Bon",
              logprob: -0.1,
              bytes: [66, 111, 110],
              top_logprobs: [{ token: "Bon", logprob: -0.1, bytes: [66, 111, 110] }],
            },
          ],
          refusal: null,
        },
        finish_reason: "stop",
        stop_reason: null,
      },
    ],
    usage: { prompt_tokens: 10, completion_tokens: 3, total_tokens: 13, prompt_tokens_details: null },
    system_fingerprint: "fp_1",
  };

  it("a completion keeps its content, logprobs and usage, renamed to the public model, valid per OpenAI", () => {
    const json = chatCompletionJson(completionFromJson(upstream, "chat-default"));
    validateOpenAI("CreateChatCompletionResponse", json);
    expect(json).toMatchObject({
      id: "chatcmpl-abc",
      object: "chat.completion",
      created: 1_795_000_000,
      model: "chat-default",
      choices: [
        {
          index: 0,
          message: { role: "assistant", content: "Bonjour !", refusal: null },
          finish_reason: "stop",
          logprobs: { content: [{ token: "Bon", logprob: -0.1, bytes: [66, 111, 110] }] },
        },
      ],
      usage: { prompt_tokens: 10, completion_tokens: 3, total_tokens: 13 },
      system_fingerprint: "fp_1",
    });
  });

  it("chunks keep deltas and tool call fragments, valid per OpenAI", () => {
    const chunks = [
      upstreamChunk([{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }]),
      upstreamChunk([
        {
          index: 0,
          delta: {
            tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "lookup", arguments: "" } }],
          },
          logprobs: null,
          finish_reason: null,
        },
      ]),
      upstreamChunk([
        {
          index: 0,
          delta: { tool_calls: [{ index: 0, function: { arguments: '{"q":' } }] },
          logprobs: null,
          finish_reason: null,
        },
      ]),
      upstreamChunk([{ index: 0, delta: {}, logprobs: null, finish_reason: "tool_calls" }]),
      upstreamChunk([], { usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 } }),
    ];
    const out = chunks.map((c) => chatChunkJson(chunkFromJson(c, "chat-default")));
    for (const c of out) validateOpenAI("CreateChatCompletionStreamResponse", c);
    expect(out[0]?.choices).toEqual([
      { index: 0, delta: { role: "assistant", content: "" }, finish_reason: null, logprobs: null },
    ]);
    expect(out[1]?.choices).toEqual([
      {
        index: 0,
        delta: {
          tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "lookup", arguments: "" } }],
        },
        finish_reason: null,
        logprobs: null,
      },
    ]);
    expect((out[2]?.choices as JsonValue[] | undefined)?.[0]).toMatchObject({
      delta: { tool_calls: [{ index: 0, function: { arguments: '{"q":' } }] },
    });
    expect((out[3]?.choices as JsonValue[] | undefined)?.[0]).toMatchObject({ finish_reason: "tool_calls" });
    expect(out[4]).toMatchObject({ choices: [], usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 } });
    expect(out.every((c) => c.model === "chat-default")).toBe(true);
  });

  it("chunks pass vendor fields of the delta and of the choice on, nulls and known fields once", () => {
    const upstream = upstreamChunk([
      {
        index: 0,
        delta: { content: "x", reasoning_content: "because", annotations: null },
        logprobs: null,
        finish_reason: null,
        stop_reason: null,
        token_ids: [17, 42],
      },
    ]);
    const out = chatChunkJson(chunkFromJson(upstream, "chat-default"));
    validateOpenAI("CreateChatCompletionStreamResponse", out);
    expect(out.choices).toEqual([
      {
        index: 0,
        delta: { content: "x", reasoning_content: "because" },
        finish_reason: null,
        logprobs: null,
        token_ids: [17, 42],
      },
    ]);
    // Field order as OpenAI's: the modelled fields first, then what the model server added.
    expect(Object.keys((out.choices as JsonObject[])[0] as JsonObject)).toEqual([
      "index",
      "delta",
      "finish_reason",
      "logprobs",
      "token_ids",
    ]);
  });

  it("an empty params message round-trips", () => {
    expect(create(ChatCompletionParamsSchema).messages).toEqual([]);
  });
});
