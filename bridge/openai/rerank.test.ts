import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { RerankResponseSchema } from "../../gen/passerelle/rerank/v1/rerank_service_pb.js";
import { InvalidRequest } from "./invalid-request.js";
import { rerankRequestFromJson, rerankResponseJson } from "./rerank.js";

function invalid(body: unknown): InvalidRequest {
  try {
    rerankRequestFromJson(body);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidRequest);
    return err as InvalidRequest;
  }
  throw new Error(`expected ${JSON.stringify(body)} to be refused`);
}

describe("rerankRequestFromJson", () => {
  it("reads Cohere's request: strings or {text} documents, top_n, return_documents, user, extras kept", () => {
    const req = rerankRequestFromJson({
      model: "m",
      query: "q",
      documents: ["a", { text: "b", title: "ignored" }],
      top_n: 3,
      return_documents: true,
      user: "u",
      truncate: true,
      max_chunks_per_doc: 4,
    });
    expect(req).toMatchObject({
      model: "m",
      query: "q",
      documents: ["a", "b"],
      topN: 3,
      returnDocuments: true,
      user: "u",
      extra: { truncate: true, max_chunks_per_doc: 4 },
    });
    const bare = rerankRequestFromJson({ model: "m", query: "q", documents: ["a"], top_n: null });
    expect(bare.topN).toBeUndefined();
    expect(bare.user).toBeUndefined();
    expect(bare.returnDocuments).toBe(false);
    expect(bare.extra).toBeUndefined();
    // Larger than any list means all of them; kept within the RPC's range.
    expect(rerankRequestFromJson({ model: "m", query: "q", documents: ["a"], top_n: 2 ** 40 }).topN).toBe(0xffffffff);
  });

  it("refuses what it cannot read, naming the field", () => {
    const cases: [unknown, string][] = [
      [[], "body"],
      [{ query: "q", documents: ["a"] }, "model"],
      [{ model: "m", documents: ["a"] }, "query"],
      [{ model: "m", query: "  ", documents: ["a"] }, "query"],
      [{ model: "m", query: "q" }, "documents"],
      [{ model: "m", query: "q", documents: [] }, "documents"],
      [{ model: "m", query: "q", documents: "a" }, "documents"],
      [{ model: "m", query: "q", documents: ["a", 1] }, "documents"],
      [{ model: "m", query: "q", documents: [{ title: "t" }] }, "documents"],
      [{ model: "m", query: "q", documents: ["a"], top_n: 0 }, "top_n"],
      [{ model: "m", query: "q", documents: ["a"], top_n: 1.5 }, "top_n"],
      [{ model: "m", query: "q", documents: ["a"], return_documents: "yes" }, "return_documents"],
      [{ model: "m", query: "q", documents: ["a"], user: 1 }, "user"],
    ];
    for (const [body, param] of cases) expect(invalid(body).param, JSON.stringify(body)).toBe(param);
    expect(invalid({ model: "m", query: "q", documents: [] }).message).toBe("'documents' must not be empty.");
  });
});

describe("rerankResponseJson", () => {
  it("writes Cohere's answer with OpenAI-style usage plus cost and carbon; documents only when asked", () => {
    const res = create(RerankResponseSchema, {
      id: "id-1",
      model: "m",
      results: [
        { index: 1, relevanceScore: 0.75, document: "b" },
        { index: 0, relevanceScore: 0.25 },
      ],
      usage: {
        promptTokens: 5,
        totalTokens: 5,
        cost: 0.001,
        carbon: { kwh: { min: 1, max: 2 }, kgco2eq: { min: 3, max: 4 } },
      },
    });
    expect(rerankResponseJson(res)).toEqual({
      object: "list",
      id: "id-1",
      model: "m",
      results: [
        { index: 1, relevance_score: 0.75, document: { text: "b" } },
        { index: 0, relevance_score: 0.25 },
      ],
      usage: {
        prompt_tokens: 5,
        total_tokens: 5,
        cost: 0.001,
        carbon: { kWh: { min: 1, max: 2 }, kgCO2eq: { min: 3, max: 4 } },
      },
    });
  });
});
