import { describe, expect, it } from "vitest";
import { chunkFromJson, usageFromJson } from "./openai-json.js";

describe("usageFromJson", () => {
  it("keeps the upstream's counts, with details, and sums a missing total", () => {
    const usage = usageFromJson({ prompt_tokens: 10, completion_tokens: 3, prompt_tokens_details: { cached: 2 } });
    expect(usage).toMatchObject({ promptTokens: 10, completionTokens: 3, totalTokens: 13 });
    expect(usage?.details).toEqual({ prompt_tokens_details: { cached: 2 } });
    expect(usageFromJson({ prompt_tokens: 4, completion_tokens: 1, total_tokens: 5 })?.totalTokens).toBe(5);
    expect(usageFromJson({ prompt_tokens: 4 })).toMatchObject({ promptTokens: 4, completionTokens: 0 });
  });

  // Governance settles limits and bills from these counts: a count that is not one makes the gateway count instead.
  it.each([10.5, -5, "10", 2 ** 40, Number.MAX_SAFE_INTEGER + 2, true])(
    "treats prompt_tokens %s as no usage",
    (bad) => {
      expect(usageFromJson({ prompt_tokens: bad, completion_tokens: 20, total_tokens: 30 })).toBeUndefined();
      expect(usageFromJson({ prompt_tokens: 20, completion_tokens: bad })).toBeUndefined();
    },
  );

  it("ignores a total that is not a count", () => {
    expect(usageFromJson({ prompt_tokens: 2, completion_tokens: 3, total_tokens: 5.5 })?.totalTokens).toBe(5);
  });

  it("leaves a streamed chunk with a broken usage without usage", () => {
    const chunk = chunkFromJson(
      { id: "c", object: "chat.completion.chunk", created: 1, model: "u", choices: [], usage: { prompt_tokens: -1 } },
      "m",
    );
    expect(chunk.usage).toBeUndefined();
  });
});
