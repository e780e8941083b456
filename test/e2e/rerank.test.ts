import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { RerankService } from "../../gen/passerelle/rerank/v1/rerank_service_pb.js";
import { countTokens } from "../../services/platform/tokenizer.js";
import { createMember, createRole, type Json } from "../support/governance.js";
import { expectOpenAIError } from "../support/openai-schema.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { overlapScore, pairTokens } from "../upstream/rerank.js";
import { type Simulator, startSimulator } from "../upstream/simulator.js";
import { DEFAULT_MODELS } from "../upstream/types.js";

const QUERY = "what is the capital of France";
const DOCS = [
  "Berlin is the capital of Germany",
  "Paris is the capital of France",
  "Cats sleep sixteen hours a day",
  "France is a country in Europe",
];
/** The order the simulator's scores give (computed, not hard-coded, so that a change of scoring shows here). */
const byScore = DOCS.map((d, index) => ({ index, score: overlapScore(QUERY, d) })).sort(
  (a, b) => b.score - a.score || a.index - b.index,
);

/**
 * Rerank end to end over real sockets: plain fetch → REST bridge → RerankService → a vLLM simulator (`/v2/rerank`)
 * and a TEI one (`/rerank`, registered through TEI's `/info` probe); the RPC over connect-node; the usage ledger
 * and the role's limits as for chat.
 */
describe("rerank", () => {
  let vllm: Simulator;
  let tei: Simulator;
  let t: TestPlatform;
  let dir: string;

  beforeAll(async () => {
    const models = [...DEFAULT_MODELS, { id: "sim-rerank", maxModelLen: 8192, kind: "rerank" as const }];
    [vllm, tei] = await Promise.all([startSimulator({ models }), startSimulator({ models })]);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-rerank-"));
    const file = path.join(dir, "models.yaml");
    await fs.writeFile(
      file,
      [
        "models:",
        "  - name: bge-reranker",
        "    aliases: [rerank-default]",
        "    type: text-classification",
        "    providers:",
        `      - { type: vllm, url: "${vllm.url}", model_name: sim-rerank, timeout_s: 30 }`,
        "  - name: tei-reranker",
        "    type: text-classification",
        "    providers:",
        `      - { type: tei, url: "${tei.url}", model_name: sim-rerank, timeout_s: 30 }`,
        "  - name: qwen-chat",
        "    type: text-generation",
        "    providers:",
        `      - { type: vllm, url: "${vllm.url}", model_name: sim-chat }`,
        "",
      ].join("\n"),
    );
    t = await startTestPlatform({ env: { PASSERELLE_MODELS_FILE: file } });
  });
  beforeEach(() => {
    vllm.reset();
    tei.reset();
  });
  afterAll(async () => {
    await t?.close();
    await Promise.all([vllm?.close(), tei?.close()]);
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  const post = (body: unknown, key = t.adminKey) =>
    fetch(`${t.httpUrl}/v1/rerank`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const upstreamCalls = () =>
    (vllm.stats.requests["/v2/rerank"] ?? 0) +
    (tei.stats.requests["/rerank"] ?? 0) +
    (vllm.stats.requests["/rerank"] ?? 0);

  it("ranks by relevance over vLLM, in Cohere's shape with usage, cost and carbon", async () => {
    const res = await post({ model: "rerank-default", query: QUERY, documents: DOCS });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Json;
    expect(Object.keys(body).sort()).toEqual(["id", "model", "object", "results", "usage"]);
    expect(body.object).toBe("list");
    expect(body.model).toBe("rerank-default");
    expect(body.results).toEqual(byScore.map((s) => ({ index: s.index, relevance_score: s.score })));
    expect(body.results[0].index).toBe(1);
    // vLLM's own count is billed.
    const tokens = DOCS.reduce((n, d) => n + pairTokens(QUERY, d), 0);
    expect(body.usage).toEqual({
      prompt_tokens: tokens,
      total_tokens: tokens,
      cost: 0,
      carbon: { kWh: { min: 0, max: 0 }, kgCO2eq: { min: 0, max: 0 } },
    });
    expect(vllm.stats.lastRequest["/v2/rerank"]).toEqual({ model: "sim-rerank", query: QUERY, documents: DOCS });
  });

  it("cuts to top_n, and answers every document for a top_n larger than the list", async () => {
    const two = (await (await post({ model: "bge-reranker", query: QUERY, documents: DOCS, top_n: 2 })).json()) as Json;
    expect(two.results.map((r: Json) => r.index)).toEqual(byScore.slice(0, 2).map((s) => s.index));
    expect(vllm.stats.lastRequest["/v2/rerank"]).toMatchObject({ top_n: 2 });
    const all = (await (
      await post({ model: "bge-reranker", query: QUERY, documents: DOCS, top_n: 50 })
    ).json()) as Json;
    expect(all.results.map((r: Json) => r.index)).toEqual(byScore.map((s) => s.index));
  });

  it("ranks over TEI: its own dialect, cut by the gateway, tokens counted by the gateway; {text} documents", async () => {
    const res = await post({
      model: "tei-reranker",
      query: QUERY,
      documents: DOCS.map((text) => ({ text })),
      top_n: 3,
      return_documents: true,
      truncate: true,
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Json;
    expect(body.results).toEqual(
      byScore.slice(0, 3).map((s) => ({ index: s.index, relevance_score: s.score, document: { text: DOCS[s.index] } })),
    );
    // TEI sends no usage: the gateway counts the query once per document plus each document.
    const counted = DOCS.reduce((n, d) => n + countTokens(QUERY) + countTokens(d), 0);
    expect(body.usage).toMatchObject({ prompt_tokens: counted, total_tokens: counted });
    expect(tei.stats.lastRequest["/rerank"]).toEqual({ truncate: true, query: QUERY, texts: DOCS, raw_scores: false });
    expect(tei.stats.requests["/v2/rerank"]).toBeUndefined();
  });

  it("ranks more documents over TEI than one TEI call takes", async () => {
    const documents = Array.from({ length: 40 }, (_, i) => (i === 37 ? "the capital of France is Paris" : `note ${i}`));
    const res = await post({ model: "tei-reranker", query: QUERY, documents, top_n: 1 });
    expect(res.status).toBe(200);
    expect(((await res.json()) as Json).results).toEqual([
      { index: 37, relevance_score: overlapScore(QUERY, documents[37] as string) },
    ]);
    expect(tei.stats.requests["/rerank"]).toBe(2);
  });

  it("refuses bad input in OpenAI's error shape without calling an upstream", async () => {
    const wrong = await expectOpenAIError(
      await post({ model: "qwen-chat", query: QUERY, documents: DOCS }),
      400,
      "invalid_request_error",
    );
    expect(wrong.error).toMatchObject({ param: "model", code: "wrong_model_type" });
    const unknown = await expectOpenAIError(await post({ model: "nope", query: QUERY, documents: DOCS }), 404);
    expect(unknown.error.code).toBe("model_not_found");
    for (const [body, param] of [
      [{ model: "bge-reranker", query: QUERY, documents: [] }, "documents"],
      [{ model: "bge-reranker", query: QUERY }, "documents"],
      [{ model: "bge-reranker", query: "", documents: DOCS }, "query"],
      [{ model: "bge-reranker", query: QUERY, documents: DOCS, top_n: 0 }, "top_n"],
      [{ model: "bge-reranker", query: QUERY, documents: [1, 2] }, "documents"],
    ] as const) {
      const err = await expectOpenAIError(await post(body), 400, "invalid_request_error");
      expect(err.error.param, JSON.stringify(body)).toMatch(new RegExp(`^${param}`));
    }
    expect(upstreamCalls()).toBe(0);
  });

  it("answers 503 when the upstream fails", async () => {
    tei.setOptions({ failureRate: 1, failureStatus: 500 });
    await expectOpenAIError(await post({ model: "tei-reranker", query: QUERY, documents: DOCS }), 503);
    expect(tei.stats.failed).toBe(1);
  });

  it("serves the RPC to connect-node", async () => {
    const client = createClient(RerankService, createConnectTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" }));
    const headers = { authorization: `Bearer ${t.adminKey}` };
    const res = await client.rerank({ model: "bge-reranker", query: QUERY, documents: DOCS, topN: 1 }, { headers });
    expect(res.model).toBe("bge-reranker");
    expect(res.results.map((r) => [r.index, r.relevanceScore])).toEqual([[byScore[0]?.index, byScore[0]?.score]]);
    expect(res.usage?.promptTokens).toBeGreaterThan(0);
    const err = await client
      .rerank({ model: "bge-reranker", query: QUERY, documents: [] }, { headers })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
  });

  it("records each call in the usage ledger under the endpoint 'rerank', failures included", async () => {
    const body = (await (await post({ model: "bge-reranker", query: QUERY, documents: DOCS })).json()) as Json;
    let records: Json[] = [];
    const ok = () => records.find((r) => r.id === body.id);
    // The failed call of the test above has its record too, with the upstream's failure.
    const failed = () => records.find((r) => r.model === "tei-reranker" && r.status >= 500);
    for (let i = 0; i < 100 && !(ok() && failed()); i++) {
      if (i > 0) await sleep(50);
      const res = await fetch(`${t.httpUrl}/v1/me/usage?endpoint=rerank&limit=100`, {
        headers: { authorization: `Bearer ${t.adminKey}` },
      });
      records = ((await res.json()) as Json).data;
    }
    expect(ok()).toMatchObject({
      endpoint: "rerank",
      model: "bge-reranker",
      status: 200,
      prompt_tokens: body.usage.prompt_tokens,
      completion_tokens: 0,
    });
    expect(failed()).toMatchObject({ endpoint: "rerank", prompt_tokens: 0 });
    expect(records.every((r) => r.endpoint === "rerank")).toBe(true);
  });

  it("applies the role's limits: 0 forbids, requests and tokens per minute refuse before the upstream", async () => {
    const role = await createRole(t.httpUrl, t.adminKey, {
      "bge-reranker": { requests_per_minute: 1 },
      "tei-reranker": { requests_per_minute: 0 },
    });
    const { keys } = await createMember(t.httpUrl, t.adminKey, role);
    const key = keys[0] as string;
    const forbidden = await expectOpenAIError(
      await post({ model: "tei-reranker", query: QUERY, documents: DOCS }, key),
      403,
      "permission_error",
    );
    expect(forbidden.error.code).toBe("model_forbidden");
    const first = await post({ model: "bge-reranker", query: QUERY, documents: DOCS }, key);
    expect(first.status).toBe(200);
    expect(first.headers.get("x-ratelimit-remaining-requests")).toBe("0");
    const second = await post({ model: "bge-reranker", query: QUERY, documents: DOCS }, key);
    expect((await expectOpenAIError(second, 429, "rate_limit_error")).error.code).toBe("rate_limit_exceeded");

    // The query is read once per document: what is reserved against tokens_per_minute before forwarding.
    const tight = await createRole(t.httpUrl, t.adminKey, { "bge-reranker": { tokens_per_minute: 20 } });
    const member = await createMember(t.httpUrl, t.adminKey, tight);
    vllm.reset();
    const tooMany = await post({ model: "bge-reranker", query: QUERY, documents: DOCS }, member.keys[0]);
    await expectOpenAIError(tooMany, 429, "rate_limit_error");
    expect(vllm.stats.requests["/v2/rerank"]).toBeUndefined();
    const fits = await post({ model: "bge-reranker", query: "France", documents: ["Paris"] }, member.keys[0]);
    expect(fits.status).toBe(200);
  });
});
