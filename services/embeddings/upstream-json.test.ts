import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { CreateEmbeddingsRequestSchema } from "../../gen/passerelle/embeddings/v1/embeddings_service_pb.js";
import { UpstreamError } from "../inference/index.js";
import { batchFromJson, countInputTokens, inputsOf, upstreamEmbeddingsBody } from "./upstream-json.js";

const protocolError = (fn: () => unknown) => {
  expect(fn).toThrow(UpstreamError);
  try {
    fn();
  } catch (err) {
    expect((err as UpstreamError).failure.kind).toBe("protocol");
  }
};

describe("embeddings upstream JSON", () => {
  it("builds the upstream body: list input, float, and the client's fields only", () => {
    const req = create(CreateEmbeddingsRequestSchema, {
      model: "public",
      input: { case: "tokens", value: { inputs: [{ ids: [5, 6] }] } },
      user: "u",
      extra: { model: "ignored", encoding_format: "base64", priority: 1 },
    });
    expect(inputsOf(req)).toEqual([[5, 6]]);
    expect(upstreamEmbeddingsBody(req, "up", inputsOf(req))).toEqual({
      model: "up",
      input: [[5, 6]],
      encoding_format: "float",
      user: "u",
      priority: 1,
    });
    expect(inputsOf(create(CreateEmbeddingsRequestSchema, { model: "m" }))).toEqual([]);
  });

  it("places vectors by index, rounds them to float32, and reports the usage only when the upstream sent one", () => {
    const r = batchFromJson(
      {
        data: [
          { index: 1, embedding: [0.1, 0.2] },
          { index: 0, embedding: [0.3, 0.4] },
        ],
        usage: { prompt_tokens: 4 },
      },
      2,
    );
    expect(r.vectors).toEqual([
      [Math.fround(0.3), Math.fround(0.4)],
      [Math.fround(0.1), Math.fround(0.2)],
    ]);
    expect(r.usage).toEqual({ promptTokens: 4, totalTokens: 4 });
    expect(batchFromJson({ data: [{ embedding: [1] }] }, 1)).toEqual({ vectors: [[1]], usage: undefined });
  });

  it("treats a usage whose count is not one as no usage (the gateway counts), rather than billing 0", () => {
    const at = (usage: unknown) => batchFromJson({ data: [{ embedding: [1] }], usage }, 1).usage;
    for (const bad of [{ prompt_tokens: 10.5 }, { prompt_tokens: -5 }, { prompt_tokens: "7" }, {}]) {
      expect(at(bad), JSON.stringify(bad)).toBeUndefined();
    }
    expect(at({ total_tokens: 6 })).toEqual({ promptTokens: 6, totalTokens: 6 });
    expect(at({ prompt_tokens: 6, total_tokens: 6.5 })).toEqual({ promptTokens: 6, totalTokens: 6 });
  });

  it("counts input tokens when an upstream sends no usage: exact for ids, o200k for text", () => {
    expect(countInputTokens([[1, 2, 3], [4]])).toBe(4);
    expect(countInputTokens(["", "hello world"])).toBe(2);
  });

  it("decodes a base64 vector from an upstream that ignored `float`", () => {
    const b64 = Buffer.from(new Float32Array([0.5, -2]).buffer).toString("base64");
    expect(batchFromJson({ data: [{ index: 0, embedding: b64 }] }, 1).vectors).toEqual([[0.5, -2]]);
  });

  it("refuses answers that do not fit the request", () => {
    protocolError(() => batchFromJson({ data: [] }, 1));
    protocolError(() => batchFromJson({}, 1));
    protocolError(() =>
      batchFromJson(
        {
          data: [
            { index: 0, embedding: [1] },
            { index: 0, embedding: [2] },
          ],
        },
        2,
      ),
    );
    protocolError(() => batchFromJson({ data: [{ index: 3, embedding: [1] }] }, 1));
    protocolError(() => batchFromJson({ data: [{ index: 0, embedding: ["x"] }] }, 1));
    protocolError(() => batchFromJson({ data: [{ index: 0, embedding: [] }] }, 1));
    protocolError(() => batchFromJson({ data: [{ index: 0, embedding: "AAA" }] }, 1));
  });
});
