import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { overlapScore, pairTokens } from "./rerank.js";
import { type Simulator, startSimulator } from "./simulator.js";
import { DEFAULT_MODELS } from "./types.js";

const post = async (sim: Simulator, path: string, body: unknown) => {
  const res = await fetch(`${sim.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  // biome-ignore lint/suspicious/noExplicitAny: JSON bodies are checked by the assertions
  return { status: res.status, body: (await res.json()) as any };
};

const QUERY = "capital of France";
const DOCS = ["Berlin is the capital of Germany", "Paris is the capital of France", "Cats sleep a lot"];

describe("overlapScore", () => {
  it("is the Dice coefficient of the word sets, in [0, 1], case-insensitive", () => {
    expect(overlapScore("a b", "A B")).toBe(1);
    expect(overlapScore("a b", "c d")).toBe(0);
    expect(overlapScore("a b", "a c")).toBe(0.5);
    expect(overlapScore("", "")).toBe(0);
    const s = DOCS.map((d) => overlapScore(QUERY, d));
    expect(s[1]).toBeGreaterThan(s[0] as number);
    expect(s[0]).toBeGreaterThan(s[2] as number);
  });
});

describe("simulator rerank routes", () => {
  let sim: Simulator;
  let embedOnly: Simulator;

  beforeAll(async () => {
    sim = await startSimulator({ models: [...DEFAULT_MODELS, { id: "sim-rerank", maxModelLen: 64, kind: "rerank" }] });
    embedOnly = await startSimulator();
  });
  beforeEach(() => sim.reset());
  afterAll(async () => {
    await sim?.close();
    await embedOnly?.close();
  });

  it("answers vLLM's /v2/rerank sorted by score, cut to top_n, with documents and usage", async () => {
    const tokens = DOCS.reduce((n, d) => n + pairTokens(QUERY, d), 0);
    const all = await post(sim, "/v2/rerank", { model: "sim-rerank", query: QUERY, documents: DOCS });
    expect(all.status).toBe(200);
    expect(all.body).toMatchObject({ model: "sim-rerank", usage: { total_tokens: tokens } });
    expect(all.body.id).toMatch(/^rerank-/);
    expect(all.body.results.map((r: { index: number }) => r.index)).toEqual([1, 0, 2]);
    expect(all.body.results[0]).toEqual({
      index: 1,
      document: { text: DOCS[1] },
      relevance_score: overlapScore(QUERY, DOCS[1] as string),
    });
    const top = await post(sim, "/v2/rerank", { model: "sim-rerank", query: QUERY, documents: DOCS, top_n: 1 });
    expect(top.body.results.map((r: { index: number }) => r.index)).toEqual([1]);
    sim.setOptions({ omitUsage: true });
    expect((await post(sim, "/v2/rerank", { query: QUERY, documents: DOCS })).body.usage).toBeUndefined();
  });

  it("refuses on /v2/rerank what vLLM refuses: unknown model, a model of another kind, no documents, too long", async () => {
    expect((await post(sim, "/v2/rerank", { model: "nope", query: "q", documents: ["a"] })).status).toBe(404);
    const chat = await post(sim, "/v2/rerank", { model: "sim-chat", query: "q", documents: ["a"] });
    expect(chat.status).toBe(400);
    expect(chat.body.error.message).toMatch(/does not support Rerank/);
    expect((await post(sim, "/v2/rerank", { model: "sim-rerank", query: "q", documents: [] })).status).toBe(400);
    const long = await post(sim, "/v2/rerank", { model: "sim-rerank", query: "q", documents: ["word ".repeat(100)] });
    expect(long.status).toBe(400);
    expect(long.body.error.message).toMatch(/maximum context length is 64/);
  });

  it("answers TEI's /rerank as a bare sorted list, raw logits on request, and /info for the probe", async () => {
    const res = await post(sim, "/rerank", { query: QUERY, texts: DOCS, return_text: true });
    expect(res.status).toBe(200);
    expect(res.body.map((r: { index: number }) => r.index)).toEqual([1, 0, 2]);
    expect(res.body[0]).toEqual({ index: 1, score: overlapScore(QUERY, DOCS[1] as string), text: DOCS[1] });
    const raw = await post(sim, "/rerank", { query: QUERY, texts: DOCS, raw_scores: true });
    const p = overlapScore(QUERY, DOCS[1] as string);
    expect(raw.body[0].score).toBeCloseTo(Math.log(p / (1 - p)), 9);
    expect(sim.stats.lastRequest["/rerank"]).toEqual({ query: QUERY, texts: DOCS, raw_scores: true });

    const info = (await fetch(`${sim.url}/info`).then((r) => r.json())) as Record<string, unknown>;
    expect(info).toMatchObject({ model_id: "sim-rerank", max_input_length: 64, model_type: { reranker: {} } });
    const embedInfo = (await fetch(`${embedOnly.url}/info`).then((r) => r.json())) as Record<string, unknown>;
    expect(embedInfo).toMatchObject({ model_id: "sim-embed", model_type: { embedding: { pooling: "cls" } } });
  });

  it("refuses on /rerank what TEI refuses, in TEI's error shape", async () => {
    expect(await post(sim, "/rerank", { query: "q", texts: [] })).toEqual({
      status: 422,
      body: { error: "`texts` cannot be empty", error_type: "Validation" },
    });
    expect((await post(sim, "/rerank", { query: "q" })).status).toBe(422);
    const many = await post(sim, "/rerank", { query: "q", texts: Array.from({ length: 33 }, (_, i) => `t${i}`) });
    expect(many).toEqual({
      status: 422,
      body: { error: "batch size 33 > maximum allowed batch size 32", error_type: "Validation" },
    });
    expect(await post(embedOnly, "/rerank", { query: "q", texts: ["a"] })).toEqual({
      status: 424,
      body: { error: "model is not a re-ranker model", error_type: "Backend" },
    });
  });

  it("honours injected failures and latency like the other routes", async () => {
    sim.setOptions({ failureRate: 1, failureStatus: 503 });
    expect((await post(sim, "/rerank", { query: "q", texts: ["a"] })).status).toBe(503);
    expect((await post(sim, "/v2/rerank", { query: "q", documents: ["a"] })).status).toBe(503);
    expect(sim.stats.failed).toBe(2);
    sim.setOptions({ failureRate: 0, ttftMs: 120 });
    const started = performance.now();
    expect((await post(sim, "/rerank", { query: "q", texts: ["a"] })).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(100);
  });
});
