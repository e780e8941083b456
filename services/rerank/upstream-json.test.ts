import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { RerankRequestSchema } from "../../gen/passerelle/rerank/v1/rerank_service_pb.js";
import { UpstreamError } from "../inference/index.js";
import { countTokens } from "../platform/tokenizer.js";
import {
  countRerankTokens,
  dialectOf,
  ranked,
  rerankFromJson,
  upstreamPath,
  upstreamRerankBody,
} from "./upstream-json.js";

const protocolError = (fn: () => unknown, message: RegExp) => {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(UpstreamError);
  expect((caught as UpstreamError).failure.kind).toBe("protocol");
  expect((caught as UpstreamError).message).toMatch(message);
};

describe("rerank upstream JSON", () => {
  it("speaks TEI's dialect to TEI and Cohere's (vLLM's) to the others", () => {
    expect([dialectOf("tei"), dialectOf("vllm"), dialectOf("openai"), dialectOf(undefined)]).toEqual([
      "tei",
      "vllm",
      "vllm",
      "vllm",
    ]);
    expect([upstreamPath("tei"), upstreamPath("vllm")]).toEqual(["/rerank", "/v2/rerank"]);
  });

  it("builds each dialect's body: extras first, the gateway's fields win, top_n and user only when set", () => {
    const req = create(RerankRequestSchema, {
      model: "public",
      query: "q",
      documents: ["a", "b"],
      topN: 1,
      user: "u",
      extra: { truncate: true, query: "ignored", model: "ignored" },
    });
    expect(upstreamRerankBody(req, "tei", "up")).toEqual({
      truncate: true,
      query: "q",
      texts: ["a", "b"],
      raw_scores: false,
    });
    expect(upstreamRerankBody(req, "vllm", "up")).toEqual({
      truncate: true,
      model: "up",
      query: "q",
      documents: ["a", "b"],
      top_n: 1,
      user: "u",
    });
    const bare = create(RerankRequestSchema, { model: "m", query: "q", documents: ["a"] });
    expect(upstreamRerankBody(bare, "vllm", "up")).toEqual({ model: "up", query: "q", documents: ["a"] });
  });

  it("counts the query once per document plus each document", () => {
    const q = countTokens("what is a cat");
    expect(countRerankTokens("what is a cat", ["a cat is a feline", ""])).toBe(
      2 * q + countTokens("a cat is a feline"),
    );
    expect(countRerankTokens("", ["x"])).toBe(countTokens("x"));
  });

  it("reads TEI's bare list and vLLM's results with usage", () => {
    expect(
      rerankFromJson(
        [
          { index: 1, score: 0.9 },
          { index: 0, score: 0.1 },
        ],
        "tei",
        2,
        2,
      ),
    ).toEqual({
      scores: [
        { index: 1, score: 0.9 },
        { index: 0, score: 0.1 },
      ],
      totalTokens: undefined,
    });
    const vllm = {
      results: [{ index: 2, relevance_score: 0.5, document: { text: "c" } }],
      usage: { total_tokens: 42 },
    };
    expect(rerankFromJson(vllm, "vllm", 3, 1)).toEqual({ scores: [{ index: 2, score: 0.5 }], totalTokens: 42 });
    // No usage, or an unreadable one: the caller counts.
    expect(rerankFromJson({ results: [{ index: 0, relevance_score: 1 }] }, "vllm", 1, 1).totalTokens).toBeUndefined();
    expect(
      rerankFromJson({ results: [{ index: 0, relevance_score: 1 }], usage: { total_tokens: -1 } }, "vllm", 1, 1)
        .totalTokens,
    ).toBeUndefined();
  });

  it("refuses answers it cannot trust: wrong shape, indexes out of range or repeated, scores not finite, too few", () => {
    protocolError(() => rerankFromJson({ results: [] }, "tei", 1, 1), /no rerank results/);
    protocolError(() => rerankFromJson([{ index: 0, score: 1 }], "vllm", 1, 1), /no rerank results/);
    protocolError(() => rerankFromJson([{ index: 2, score: 1 }], "tei", 2, 1), /invalid or repeated/);
    protocolError(() => rerankFromJson([{ index: 0.5, score: 1 }], "tei", 2, 1), /invalid or repeated/);
    protocolError(
      () =>
        rerankFromJson(
          [
            { index: 0, score: 1 },
            { index: 0, score: 1 },
          ],
          "tei",
          2,
          2,
        ),
      /invalid or repeated/,
    );
    protocolError(() => rerankFromJson([{ index: 0, score: "high" }], "tei", 1, 1), /no finite score at results\[0\]/);
    protocolError(() => rerankFromJson({ results: [{ index: 0, relevance_score: null }] }, "vllm", 1, 1), /finite/);
    protocolError(() => rerankFromJson([{ index: 0, score: 1 }], "tei", 2, 2), /1 rerank results for 2 documents/);
    protocolError(
      () => rerankFromJson({ results: [{ index: 0, relevance_score: 1 }] }, "vllm", 3, 2),
      /1 rerank results for 3 documents/,
    );
  });

  it("ranks by score descending, ties in document order, cut to top_n", () => {
    const scores = [
      { index: 0, score: 0.2 },
      { index: 3, score: 0.9 },
      { index: 1, score: 0.9 },
      { index: 2, score: -1 },
    ];
    expect(ranked(scores, undefined).map((s) => s.index)).toEqual([1, 3, 0, 2]);
    expect(ranked(scores, 2).map((s) => s.index)).toEqual([1, 3]);
    expect(ranked(scores, 10)).toHaveLength(4);
  });
});
