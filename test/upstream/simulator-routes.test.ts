import { spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { validateOpenAI } from "../support/openai-schema.js";
import { type Simulator, startSimulator } from "./simulator.js";

/** The simulator's other routes: embeddings, models, health, metrics, auth, several instances, the dev server. */

interface Embeddings {
  data: { index: number; object: string; embedding: number[] | string }[];
  usage: { prompt_tokens: number; total_tokens: number };
  model: string;
}

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator();
});
afterAll(async () => {
  await sim?.close();
});
afterEach(() => {
  sim.reset();
});

function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

async function embed(body: Record<string, unknown>): Promise<Embeddings> {
  const res = await post(`${sim.url}/v1/embeddings`, { model: "sim-embed", ...body });
  const json: unknown = await res.json();
  expect(res.status, JSON.stringify(json)).toBe(200);
  return json as Embeddings;
}

const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const floats = (v: number[] | string | undefined) => {
  if (!Array.isArray(v)) throw new Error("expected a float array");
  return v;
};

function decodeBase64(s: string | number[] | undefined): number[] {
  if (typeof s !== "string") throw new Error("expected a base64 string");
  const buf = Buffer.from(s, "base64");
  const out: number[] = [];
  for (let i = 0; i < buf.length; i += 4) out.push(buf.readFloatLE(i));
  return out;
}

describe("embeddings", () => {
  it("returns deterministic unit vectors of the model's size, in OpenAI's shape", async () => {
    const body = await embed({ input: "Bonjour le monde" });
    validateOpenAI("CreateEmbeddingResponse", body);
    expect(body.model).toBe("sim-embed");
    const v = floats(body.data[0]?.embedding);
    expect(v).toHaveLength(384);
    expect(norm(v)).toBeCloseTo(1, 6);
    expect(floats((await embed({ input: "Bonjour le monde" })).data[0]?.embedding)).toEqual(v);
    expect(floats((await embed({ input: "Autre chose" })).data[0]?.embedding)).not.toEqual(v);
    expect(body.usage.prompt_tokens).toBeGreaterThan(0);
    expect(body.usage.total_tokens).toBe(body.usage.prompt_tokens);
  });

  it("accepts string[], token ids and arrays of token ids", async () => {
    const list = await embed({ input: ["a", "b", "c"] });
    validateOpenAI("CreateEmbeddingResponse", list);
    expect(list.data.map((d) => d.index)).toEqual([0, 1, 2]);
    const ids = await embed({ input: [101, 2023, 102] });
    expect(ids.data).toHaveLength(1);
    expect(ids.usage.prompt_tokens).toBe(3);
    const many = await embed({ input: [[1, 2], [3]] });
    expect(many.data).toHaveLength(2);
    expect(many.usage.prompt_tokens).toBe(3);
  });

  it("encodes base64 as little-endian float32, equal to the float answer", async () => {
    const asFloat = floats((await embed({ input: ["x", "y"] })).data[1]?.embedding);
    const b64 = await embed({ input: ["x", "y"], encoding_format: "base64" });
    const decoded = decodeBase64(b64.data[1]?.embedding);
    expect(decoded).toHaveLength(384);
    decoded.forEach((x, i) => {
      expect(x).toBeCloseTo(asFloat[i] ?? Number.NaN, 6);
    });
    validateOpenAI("CreateEmbeddingResponse", { ...b64, data: b64.data.map((d) => ({ ...d, embedding: decoded })) });
  });

  it("honours dimensions (a normalized matryoshka prefix) and the embeddingDimensions option", async () => {
    const full = floats((await embed({ input: "q" })).data[0]?.embedding);
    const short = floats((await embed({ input: "q", dimensions: 64 })).data[0]?.embedding);
    expect(short).toHaveLength(64);
    expect(norm(short)).toBeCloseTo(1, 6);
    const prefix = full.slice(0, 64);
    short.forEach((x, i) => {
      expect(x).toBeCloseTo((prefix[i] ?? 0) / norm(prefix), 6);
    });
    const tooBig = await post(`${sim.url}/v1/embeddings`, { model: "sim-embed", input: "q", dimensions: 385 });
    expect(tooBig.status).toBe(400);
    sim.setOptions({ embeddingDimensions: 1024 });
    expect(floats((await embed({ input: "q" })).data[0]?.embedding)).toHaveLength(1024);
  });

  it("rejects unknown models, chat-only models and empty input like vLLM", async () => {
    const unknown = await post(`${sim.url}/v1/embeddings`, { model: "nope", input: "q" });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { type: "NotFoundError", param: "model", code: 404 } });
    expect((await post(`${sim.url}/v1/embeddings`, { model: "sim-chat", input: "q" })).status).toBe(400);
    expect((await post(`${sim.url}/v1/embeddings`, { model: "sim-embed", input: [] })).status).toBe(400);
    const format = await post(`${sim.url}/v1/embeddings`, { model: "sim-embed", input: "q", encoding_format: "hex" });
    expect(format.status).toBe(400);
  });
});

describe("models, health, metrics, auth", () => {
  it("lists models in vLLM's shape with max_model_len", async () => {
    const res = await fetch(`${sim.url}/v1/models`);
    const body = (await res.json()) as { object: string; data: Record<string, unknown>[] };
    expect(body.object).toBe("list");
    expect(body.data.map((m) => m.id)).toEqual(["sim-chat", "sim-embed"]);
    expect(body.data[0]).toMatchObject({
      object: "model",
      owned_by: "vllm",
      root: "sim-chat",
      parent: null,
      max_model_len: 8192,
      permission: [expect.objectContaining({ object: "model_permission", allow_sampling: true })],
    });
    for (const m of body.data) validateOpenAI("Model", m);
    sim.setOptions({ models: [{ id: "Qwen/Qwen2.5-7B-Instruct", maxModelLen: 32768, kind: "both" }] });
    const custom = (await (await fetch(`${sim.url}/v1/models`)).json()) as { data: { max_model_len: number }[] };
    expect(custom.data).toEqual([expect.objectContaining({ id: "Qwen/Qwen2.5-7B-Instruct", max_model_len: 32768 })]);
  });

  it("answers /health with 200 and an empty body (503 when unhealthy)", async () => {
    const res = await fetch(`${sim.url}/health`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("");
    sim.setOptions({ healthy: false });
    expect((await fetch(`${sim.url}/health`)).status).toBe(503);
  });

  it("exposes vLLM's metric names in Prometheus text", async () => {
    await post(`${sim.url}/v1/chat/completions`, { model: "sim-chat", messages: [{ role: "user", content: "hi" }] });
    const res = await fetch(`${sim.url}/metrics`);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    for (const model of ["sim-chat", "sim-embed"]) {
      expect(text).toContain(`vllm:num_requests_running{engine="0",model_name="${model}"} 0.0`);
      expect(text).toContain(`vllm:num_requests_waiting{engine="0",model_name="${model}"} 0.0`);
    }
    expect(text).toContain("# TYPE vllm:num_requests_running gauge");
    expect(text).toContain('vllm:generation_tokens_total{engine="0",model_name="sim-chat"} 16.0');
    expect(text).toContain('vllm:request_success_total{engine="0",finished_reason="stop",model_name="sim-chat"} 1.0');
  });

  it("requires the API key on /v1 only, answering vLLM's 401 body", async () => {
    sim.setOptions({ apiKey: "sk-upstream" });
    const chat = { model: "sim-chat", messages: [{ role: "user", content: "hi" }] };
    const none = await post(`${sim.url}/v1/chat/completions`, chat);
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ error: "Unauthorized" });
    expect((await post(`${sim.url}/v1/chat/completions`, chat, { authorization: "Bearer wrong" })).status).toBe(401);
    expect((await fetch(`${sim.url}/v1/models`)).status).toBe(401);
    expect((await post(`${sim.url}/v1/chat/completions`, chat, { authorization: "Bearer sk-upstream" })).status).toBe(
      200,
    );
    expect((await fetch(`${sim.url}/health`)).status).toBe(200);
    expect((await fetch(`${sim.url}/metrics`)).status).toBe(200);
  });

  it("echoes x-request-id, keeps connections alive, answers FastAPI's 404 and 405", async () => {
    const res = await fetch(`${sim.url}/v1/models`, { headers: { "x-request-id": "abc-123" } });
    expect(res.headers.get("x-request-id")).toBe("abc-123");
    expect(res.headers.get("connection")).toBe("keep-alive");
    expect(res.headers.get("keep-alive")).toBe("timeout=75");
    const missing = await fetch(`${sim.url}/v1/nothing`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ detail: "Not Found" });
    expect((await fetch(`${sim.url}/v1/chat/completions`)).status).toBe(405);
  });

  it("reset() restores the start options and zeroes counters", async () => {
    sim.setOptions({ failureRate: 1 });
    expect((await post(`${sim.url}/v1/embeddings`, { model: "sim-embed", input: "q" })).status).toBe(500);
    sim.reset();
    expect(sim.options.failureRate).toBe(0);
    expect(sim.stats).toMatchObject({ failed: 0, completed: 0, requests: {}, lastRequest: {} });
  });
});

describe("several instances", () => {
  it("run on different ports with their own options and counters", async () => {
    const [a, b] = await Promise.all([startSimulator({ failureRate: 1 }), startSimulator()]);
    try {
      expect(a.port).not.toBe(b.port);
      const body = { model: "sim-embed", input: "q" };
      expect((await post(`${a.url}/v1/embeddings`, body)).status).toBe(500);
      expect((await post(`${b.url}/v1/embeddings`, body)).status).toBe(200);
      expect([a.stats.failed, b.stats.failed, b.stats.completed]).toEqual([1, 0, 1]);
      await a.close();
      await expect(fetch(`${a.url}/health`)).rejects.toThrow();
      expect((await fetch(`${b.url}/health`)).status).toBe(200);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("cuts open streams when closed (a killed upstream), without counting them as cancelled", async () => {
    const s = await startSimulator({ interTokenMs: 50, completionTokens: 100 });
    const res = await post(`${s.url}/v1/chat/completions`, {
      model: "sim-chat",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    });
    const reader = res.body?.getReader();
    await reader?.read();
    await s.close();
    await expect(
      (async () => {
        for (;;) if ((await reader?.read())?.done !== false) return;
      })(),
    ).rejects.toThrow();
    expect(s.stats).toMatchObject({ cancelled: 0, inFlight: 0 });
  });

  it("npm run upstream starts N instances, prints their URLs and stops on SIGTERM", async () => {
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "test/upstream/main.ts", "--port", "0", "--instances", "2", "--ttft", "5"],
      { cwd: root, stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      const urls: string[] = [];
      for await (const line of createInterface({ input: child.stdout })) {
        if (line.startsWith("http://")) urls.push(line);
        if (urls.length === 2) break;
      }
      expect(new Set(urls).size).toBe(2);
      for (const url of urls) expect((await fetch(`${url}/health`)).status).toBe(200);
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      expect((await exited)[0]).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});
