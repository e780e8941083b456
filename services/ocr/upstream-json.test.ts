import { describe, expect, it } from "vitest";
import { UpstreamError } from "../inference/index.js";
import { maxTokensPerPage, pageChatBody, pageFromJson } from "./upstream-json.js";

describe("a page's chat completion", () => {
  it("is one user message of the instruction and the image, with extras but never over the gateway's fields", () => {
    const body = pageChatBody({
      upstreamModel: "Qwen/Qwen2.5-VL-7B-Instruct",
      prompt: "Transcribe.",
      imageUrl: "data:image/png;base64,AAAA",
      user: "u-1",
      extra: { temperature: 0, model: "other", messages: [], stream: true, stream_options: {} },
    });
    expect(body).toEqual({
      temperature: 0,
      model: "Qwen/Qwen2.5-VL-7B-Instruct",
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "Transcribe." },
            { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } },
          ],
        },
      ],
      user: "u-1",
    });
  });

  it("reserves the client's max tokens per page, else the default", () => {
    expect(maxTokensPerPage(undefined, 1024)).toBe(1024);
    expect(maxTokensPerPage({ max_tokens: 300 }, 1024)).toBe(300);
    expect(maxTokensPerPage({ max_completion_tokens: 200, max_tokens: 300 }, 1024)).toBe(200);
    expect(maxTokensPerPage({ max_tokens: "many" }, 1024)).toBe(1024);
  });
});

describe("a page's answer", () => {
  const estimate = { prompt: "Transcribe.", imageTokens: 1000 };
  const answer = (content: unknown, usage?: unknown) => ({ choices: [{ message: { content } }], usage });

  it("takes the Markdown and the upstream's counts", () => {
    expect(pageFromJson(answer("# Title\n\nText", { prompt_tokens: 900, completion_tokens: 5 }), estimate)).toEqual({
      markdown: "# Title\n\nText",
      promptTokens: 900,
      completionTokens: 5,
    });
  });

  it("drops a fence wrapping the whole answer, not fences inside it", () => {
    expect(pageFromJson(answer("```markdown\n# T\n\nx\n```\n"), estimate).markdown).toBe("# T\n\nx");
    const inner = "Intro\n\n```js\ncode\n```";
    expect(pageFromJson(answer(inner), estimate).markdown).toBe(inner);
  });

  it("counts when the upstream sends no usage, and takes an empty page as empty", () => {
    const counted = pageFromJson(answer("hello world"), estimate);
    expect(counted.promptTokens).toBeGreaterThan(1000);
    expect(counted.completionTokens).toBe(2);
    expect(pageFromJson(answer(null), estimate)).toMatchObject({ markdown: "", completionTokens: 0 });
  });

  it("is a protocol failure without a message", () => {
    expect(() => pageFromJson({ choices: [] }, estimate)).toThrow(UpstreamError);
    expect(() => pageFromJson("oops", estimate)).toThrow(UpstreamError);
  });
});
