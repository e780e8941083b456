import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/passerelle/errors/v1/error_info_pb.js";
import { deadUrl, type FakeUpstream, startFakeUpstream } from "../../test/support/fake-upstreams.js";
import { startSimulator } from "../../test/upstream/simulator.js";
import { DEFAULT_MODELS } from "../../test/upstream/types.js";
import { createHttpProbe, type ProbeTarget } from "./probe.js";

async function refusal(p: Promise<unknown>, reason: string): Promise<string> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  expect(caught, "expected the probe to refuse").toBeInstanceOf(ConnectError);
  const err = caught as ConnectError;
  expect(Code[err.code]).toBe(Code[Code.FailedPrecondition]);
  expect(err.findDetails(ErrorInfoSchema)[0]?.reason).toBe(reason);
  return err.rawMessage;
}

describe("HTTP probe of an upstream", () => {
  let vllm: FakeUpstream;
  let tei: FakeUpstream;
  const probe = createHttpProbe({ timeoutMs: 300 });
  const target = (over: Partial<ProbeTarget>): ProbeTarget => ({
    type: "vllm",
    url: vllm.url,
    key: null,
    upstreamModel: "Qwen/Qwen2.5-7B-Instruct",
    modelType: "text-generation",
    ...over,
  });

  beforeAll(async () => {
    vllm = await startFakeUpstream({
      models: [{ id: "Qwen/Qwen2.5-7B-Instruct", max_model_len: 32768 }, { id: "other" }],
      dims: 16,
    });
    tei = await startFakeUpstream({ info: { model_id: "BAAI/bge-m3", max_input_length: 8192 }, dims: 1024 });
  });
  afterAll(async () => {
    await vllm?.close();
    await tei?.close();
  });

  it("learns vLLM's max_model_len, and asks nothing else of a chat model", async () => {
    vllm.requests.length = 0;
    expect(await probe(target({}))).toEqual({ maxContextLength: 32768, vectorSize: null });
    expect(vllm.requests.map((r) => `${r.method} ${r.path}`)).toEqual(["GET /v1/models"]);
    expect(vllm.requests[0]?.authorization).toBeUndefined();
  });

  it("sends the key as a bearer token, and says so when the upstream refuses it", async () => {
    vllm.set({ key: "sk-upstream" });
    try {
      vllm.requests.length = 0;
      expect((await probe(target({ key: "sk-upstream" }))).maxContextLength).toBe(32768);
      expect(vllm.requests[0]?.authorization).toBe("Bearer sk-upstream");
      const message = await refusal(probe(target({ key: "sk-wrong" })), "PROVIDER_UPSTREAM_ERROR");
      expect(message).toMatch(/HTTP 401 \(check the provider's key\)/);
      expect(message).not.toContain("sk-wrong");
    } finally {
      vllm.set({ key: undefined });
    }
  });

  it("an entry without max_model_len leaves the context unknown", async () => {
    expect(await probe(target({ upstreamModel: "other" }))).toEqual({ maxContextLength: null, vectorSize: null });
  });

  it("refuses a model the upstream does not serve, naming what it serves", async () => {
    const message = await refusal(probe(target({ upstreamModel: "nope" })), "PROVIDER_MODEL_NOT_SERVED");
    expect(message).toContain("does not serve 'nope' (it serves: Qwen/Qwen2.5-7B-Instruct, other)");
  });

  it("learns the vector size of an embeddings model with one call", async () => {
    vllm.requests.length = 0;
    expect(await probe(target({ modelType: "text-embeddings-inference" }))).toEqual({
      maxContextLength: 32768,
      vectorSize: 16,
    });
    expect(vllm.requests.map((r) => `${r.method} ${r.path}`)).toEqual(["GET /v1/models", "POST /v1/embeddings"]);
    expect(JSON.parse(vllm.requests[1]?.body ?? "{}")).toEqual({ model: "Qwen/Qwen2.5-7B-Instruct", input: "ping" });
  });

  it("reads TEI's /info, and refuses a TEI serving another model", async () => {
    const t = (upstreamModel: string) =>
      target({ type: "tei", url: tei.url, upstreamModel, modelType: "text-embeddings-inference" });
    expect(await probe(t("BAAI/bge-m3"))).toEqual({ maxContextLength: 8192, vectorSize: 1024 });
    expect(await refusal(probe(t("BAAI/bge-large")), "PROVIDER_MODEL_NOT_SERVED")).toContain(
      "serves 'BAAI/bge-m3', not 'BAAI/bge-large'",
    );
  });

  it("accepts the simulator's reranker on TEI and vLLM as text-classification, refuses a TEI embedder", async () => {
    const rerank = { id: "sim-rerank", maxModelLen: 512, kind: "rerank" as const };
    const sim = await startSimulator({ models: [...DEFAULT_MODELS, rerank] });
    const embedder = await startSimulator();
    try {
      const t = (type: "tei" | "vllm", url: string, upstreamModel: string) =>
        target({ type, url, upstreamModel, modelType: "text-classification" });
      expect(await probe(t("tei", sim.url, "sim-rerank"))).toEqual({ maxContextLength: 512, vectorSize: null });
      expect(await probe(t("vllm", sim.url, "sim-rerank"))).toEqual({ maxContextLength: 512, vectorSize: null });
      expect(await refusal(probe(t("tei", embedder.url, "sim-embed")), "PROVIDER_MODEL_NOT_SERVED")).toContain(
        "runs a model of type 'embedding', not a reranker",
      );
    } finally {
      await Promise.all([sim.close(), embedder.close()]);
    }
  });

  it("reports an unreachable upstream, a slow one and a failing one", async () => {
    const dead = await deadUrl();
    expect(await refusal(probe(target({ url: dead })), "PROVIDER_UNREACHABLE")).toMatch(
      /Could not reach the upstream at http:\/\/127\.0\.0\.1:\d+\/v1\/models \(ECONNREFUSED\)/,
    );
    vllm.set({ delayMs: 1000 });
    try {
      expect(await refusal(probe(target({})), "PROVIDER_UNREACHABLE")).toMatch(/did not answer .* within 0.3 s/);
    } finally {
      vllm.set({ delayMs: undefined });
    }
    vllm.set({ status: 500 });
    try {
      expect(await refusal(probe(target({})), "PROVIDER_UPSTREAM_ERROR")).toMatch(/HTTP 500/);
    } finally {
      vllm.set({ status: undefined });
    }
    vllm.set({ dims: undefined });
    try {
      await refusal(probe(target({ modelType: "text-embeddings-inference" })), "PROVIDER_UPSTREAM_ERROR");
    } finally {
      vllm.set({ dims: 16 });
    }
  });
});
