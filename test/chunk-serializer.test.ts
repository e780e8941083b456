import type { JsonObject } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { chatChunkJson, createChunkSerializer } from "../bridge/openai/chat-response.js";
import type { ChatCompletionChunk } from "../gen/passerelle/inference/v1/chat_pb.js";
import { chunkFromJson } from "../services/inference/openai-json.js";
import { validateOpenAI } from "./support/openai-schema.js";

/**
 * The stream's serializer writes chunk text by hand for the common chunk: it must give, byte for byte, what
 * `JSON.stringify(chatChunkJson(chunk))` gives, for every chunk a stream can carry, in any order (it keeps the
 * chunk's opening from one chunk to the next).
 */

/** An upstream chunk as JSON.parse would give it. */
function upstream(choices: unknown[], extra: Record<string, unknown> = {}, id = "chatcmpl-1"): JsonObject {
  return JSON.parse(
    JSON.stringify({
      id,
      object: "chat.completion.chunk",
      created: 1_763_950_000,
      model: "Qwen/Qwen2.5-7B-Instruct",
      choices,
      ...extra,
    }),
  ) as JsonObject;
}

const choice = (delta: unknown, more: Record<string, unknown> = {}) => ({
  index: 0,
  delta,
  logprobs: null,
  finish_reason: null,
  ...more,
});

const STREAM: JsonObject[] = [
  upstream([choice({ role: "assistant", content: "" })]),
  upstream([choice({ content: "Bonjour" })]),
  upstream([choice({ content: ' é😀 "quoted" \n\t\\ \u2028 </script>' })]),
  upstream([choice({ content: "" })]),
  upstream([choice({ reasoning_content: "let me think" })]),
  upstream([choice({ content: "x", reasoning_content: "y" })]),
  upstream([choice({ content: "fp" })], { system_fingerprint: "fp_1" }),
  upstream([choice({ content: "vendor" }, { matched_stop: 1, vendor: { a: [1, 2, { b: null }] } })]),
  upstream([
    choice(
      { content: "lp" },
      {
        logprobs: {
          content: [
            {
              token: "lp",
              logprob: -0.25,
              bytes: [108, 112],
              top_logprobs: [{ token: "lp", logprob: -0.25, bytes: [108, 112] }],
            },
          ],
          refusal: null,
        },
      },
    ),
  ]),
  upstream([
    choice({ tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "f", arguments: "" } }] }),
  ]),
  upstream([choice({ tool_calls: [{ index: 0, function: { arguments: '{"q":"é"' } }] })]),
  upstream([choice({ refusal: "no" })]),
  upstream([choice({ content: "other stream" })], {}, "chatcmpl-2"),
  upstream([choice({ content: "a" }), { ...choice({ content: "b" }), index: 1 }]),
  upstream([choice({}, { finish_reason: "stop", stop_reason: "\n\n" })]),
  upstream([choice({}, { finish_reason: "length" })]),
  upstream([], { usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 } }),
  upstream([choice({ content: "with usage" })], { usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 } }),
];

describe("createChunkSerializer", () => {
  it("writes exactly what JSON.stringify(chatChunkJson(chunk)) writes, chunk after chunk", () => {
    for (const nullUsage of [false, true]) {
      const serialize = createChunkSerializer(nullUsage);
      for (const raw of [...STREAM, ...STREAM.slice().reverse()]) {
        const chunk = chunkFromJson(raw, "chat-default");
        const expected = JSON.stringify(chatChunkJson(chunk, nullUsage));
        expect(serialize(chunk)).toBe(expected);
        validateOpenAI("CreateChatCompletionStreamResponse", JSON.parse(expected));
      }
    }
  });

  it("says usage: null on every chunk without usage when the client asked for usage, as OpenAI does", () => {
    const serialize = createChunkSerializer(true);
    const plain = createChunkSerializer();
    for (const raw of STREAM) {
      const chunk = chunkFromJson(raw, "chat-default");
      const asked = JSON.parse(serialize(chunk)) as { usage?: unknown };
      const notAsked = JSON.parse(plain(chunk)) as { usage?: unknown };
      if (chunk.usage) {
        expect(asked.usage).toMatchObject({ prompt_tokens: 5 });
        expect(notAsked.usage).toMatchObject({ prompt_tokens: 5 });
      } else {
        expect(asked).toHaveProperty("usage", null);
        expect(notAsked).not.toHaveProperty("usage");
      }
    }
  });

  it("agrees on chunks no upstream parse would make: odd vendor field names and numbers", () => {
    const base = chunkFromJson(upstream([choice({ content: "t" })]), "chat-default");
    const [c0] = base.choices;
    if (!c0) throw new Error("no choice");
    const variants: ChatCompletionChunk[] = [
      // A vendor field named like a choice field replaces it in place in chatChunkJson.
      { ...base, choices: [{ ...c0, extra: { index: 7, z: true } }] },
      // An own "__proto__" field: Object.assign sets a prototype, JSON.stringify then leaves it out.
      { ...base, choices: [{ ...c0, extra: JSON.parse('{"__proto__":{"x":1},"y":2}') as JsonObject }] },
      // Fields named like array indices: an object lists them first, whatever the order they were added in.
      { ...base, choices: [{ ...c0, extra: { z: 1, "7": true, "01": 2 } }] },
      { ...base, choices: [{ ...c0, index: Number.NaN }] },
      { ...base, created: 0n, id: "", model: 'quote"d' },
    ];
    for (const nullUsage of [false, true]) {
      const serialize = createChunkSerializer(nullUsage);
      for (const chunk of variants) {
        expect(serialize(chunk)).toBe(JSON.stringify(chatChunkJson(chunk, nullUsage)));
      }
    }
  });
});
