// Over 400 lines on purpose: one behaviour of the vLLM simulator per test (chat, streams, tools, embeddings, models,
// health, metrics, latency, failures, stalls, queueing), each small; they share one set of simulator fixtures.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { validateOpenAI } from "../support/openai-schema.js";
import { type Simulator, startSimulator } from "./simulator.js";
import { type SseFrame, SseReader } from "./sse.js";
import { countChatPromptTokens } from "./text.js";

/**
 * The simulator's chat completions: shapes against OpenAI's schema, determinism, options, failure modes.
 * Over 400 lines because each chat option is checked both as JSON and as SSE; the other routes are in
 * simulator-routes.test.ts.
 */

type Json = Record<string, unknown>;
interface Chunk {
  choices: {
    index: number;
    delta: { role?: string; content?: string; tool_calls?: Json[] };
    finish_reason: string | null;
    logprobs: { content: Json[] } | null;
    stop_reason?: string | null;
  }[];
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  model: string;
  id: string;
}
interface Completion {
  choices: {
    index: number;
    message: {
      content: string;
      tool_calls?: { id: string; type: string; function: { name: string; arguments: string } }[];
    };
    finish_reason: string;
    stop_reason: string | null;
    logprobs: { content: { token: string; top_logprobs: unknown[] }[] } | null;
  }[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  model: string;
}

const MESSAGES = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "Name three rivers of France, please." },
];
const WEATHER_TOOL = {
  type: "function",
  function: {
    name: "get_weather",
    parameters: {
      type: "object",
      properties: { city: { type: "string" }, days: { type: "integer" }, unit: { type: "string", enum: ["c", "f"] } },
      required: ["city"],
    },
  },
};
const TIME_TOOL = { type: "function", function: { name: "get_time", parameters: { type: "object", properties: {} } } };

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

function post(path: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(`${sim.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    ...init,
  });
}

async function complete(extra: Json = {}): Promise<Completion> {
  const res = await post("/v1/chat/completions", { model: "sim-chat", messages: MESSAGES, ...extra });
  const body: unknown = await res.json();
  expect(res.status, JSON.stringify(body)).toBe(200);
  validateOpenAI("CreateChatCompletionResponse", body);
  return body as Completion;
}

/** A whole stream: its data chunks validated one by one, the `[DONE]` checked last, comments kept. */
async function streamed(extra: Json = {}): Promise<{ chunks: Chunk[]; frames: SseFrame[] }> {
  const res = await post("/v1/chat/completions", { model: "sim-chat", messages: MESSAGES, stream: true, ...extra });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
  const frames = await new SseReader(res).all();
  const data = frames.filter((f) => f.kind === "data").map((f) => f.data);
  expect(data.at(-1)).toBe("[DONE]");
  const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as unknown);
  for (const c of chunks) validateOpenAI("CreateChatCompletionStreamResponse", c);
  return { chunks: chunks as Chunk[], frames };
}

const contentOf = (chunks: Chunk[], index = 0) =>
  chunks
    .flatMap((c) => c.choices)
    .filter((c) => c.index === index)
    .map((c) => c.delta.content ?? "")
    .join("");

describe("chat completions, non-streaming", () => {
  it("answers in OpenAI's shape with usage, the requested model and vLLM's extras", async () => {
    const res = await post("/v1/chat/completions", { model: "sim-chat", messages: MESSAGES });
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f]{32}$/);
    const body = (await res.json()) as Completion & Json;
    validateOpenAI("CreateChatCompletionResponse", body);
    expect(body).toMatchObject({
      object: "chat.completion",
      model: "sim-chat",
      id: expect.stringMatching(/^chatcmpl-/),
    });
    const [choice] = body.choices;
    expect(choice?.finish_reason).toBe("stop");
    expect(choice?.stop_reason).toBeNull();
    expect(choice?.message.content.split(" ")).toHaveLength(16);
    expect(body.usage).toEqual({
      prompt_tokens: countChatPromptTokens(MESSAGES),
      completion_tokens: 16,
      total_tokens: countChatPromptTokens(MESSAGES) + 16,
    });
    expect(body).toHaveProperty("kv_transfer_params", null);
  });

  it("is deterministic: same messages and seed, same text; otherwise different", async () => {
    const a = await complete();
    const b = await complete();
    expect(b.choices[0]?.message.content).toBe(a.choices[0]?.message.content);
    const seeded = await complete({ seed: 7 });
    expect(seeded.choices[0]?.message.content).not.toBe(a.choices[0]?.message.content);
    expect((await complete({ seed: 7 })).choices[0]?.message.content).toBe(seeded.choices[0]?.message.content);
    const other = await complete({ messages: [{ role: "user", content: "Something else" }] });
    expect(other.choices[0]?.message.content).not.toBe(a.choices[0]?.message.content);
  });

  it("returns n choices with their own text, usage summing them", async () => {
    const body = await complete({ n: 2 });
    expect(body.choices.map((c) => c.index)).toEqual([0, 1]);
    expect(body.choices[0]?.message.content).not.toBe(body.choices[1]?.message.content);
    expect(body.usage.completion_tokens).toBe(32);
  });

  it("honours max_tokens and max_completion_tokens with finish_reason length", async () => {
    for (const key of ["max_tokens", "max_completion_tokens"]) {
      const body = await complete({ [key]: 5 });
      expect(body.choices[0]?.finish_reason).toBe("length");
      expect(body.choices[0]?.message.content.split(" ")).toHaveLength(5);
      expect(body.usage.completion_tokens).toBe(5);
    }
    expect((await complete({ max_tokens: 16 })).choices[0]?.finish_reason).toBe("stop");
  });

  it("cuts at a stop string and reports it as vLLM's stop_reason", async () => {
    const full = (await complete()).choices[0]?.message.content ?? "";
    const stop = ` ${full.split(" ")[5]}`;
    const body = await complete({ stop: [stop, "never-there"] });
    expect(body.choices[0]?.message.content).toBe(full.slice(0, full.indexOf(stop)));
    expect(body.choices[0]).toMatchObject({ finish_reason: "stop", stop_reason: stop });
    expect(body.usage.completion_tokens).toBeLessThan(16);
  });

  it("answers with a tool call when tool_choice is required or names a function", async () => {
    const required = await complete({ tools: [WEATHER_TOOL, TIME_TOOL], tool_choice: "required" });
    const [choice] = required.choices;
    expect(choice?.finish_reason).toBe("tool_calls");
    const call = choice?.message.tool_calls?.[0];
    expect(call).toMatchObject({ type: "function", id: expect.stringMatching(/^chatcmpl-tool-/) });
    expect(call?.function.name).toBe("get_weather");
    const args = JSON.parse(call?.function.arguments ?? "") as Json;
    expect(typeof args.city).toBe("string");
    expect(Number.isInteger(args.days)).toBe(true);
    expect(["c", "f"]).toContain(args.unit);

    const named = await complete({
      tools: [WEATHER_TOOL, TIME_TOOL],
      tool_choice: { type: "function", function: { name: "get_time" } },
    });
    expect(named.choices[0]?.message.tool_calls?.[0]?.function).toEqual({ name: "get_time", arguments: "{}" });
    const auto = await complete({ tools: [WEATHER_TOOL], tool_choice: "auto" });
    expect(auto.choices[0]?.message.tool_calls).toBeUndefined();
  });

  it("returns well-formed logprobs with top_logprobs", async () => {
    const body = await complete({ logprobs: true, top_logprobs: 3, max_tokens: 4 });
    const content = body.choices[0]?.logprobs?.content ?? [];
    expect(content).toHaveLength(4);
    expect(content.map((t) => t.token).join("")).toBe(body.choices[0]?.message.content);
    for (const t of content) expect(t.top_logprobs).toHaveLength(3);
    expect((await complete()).choices[0]?.logprobs).toBeNull();
  });

  it("records the last body as received (vendor extras included, nothing added)", async () => {
    await complete({ top_k: 20, min_p: 0.05 });
    expect(sim.stats.lastRequest["/v1/chat/completions"]).toEqual({
      model: "sim-chat",
      messages: MESSAGES,
      top_k: 20,
      min_p: 0.05,
    });
    expect(sim.stats.requests["/v1/chat/completions"]).toBe(1);
    expect(sim.stats.completed).toBe(1);
  });

  it("answers vLLM's errors: unknown model 404, bad requests 400, in the current or legacy shape", async () => {
    const notFound = await post("/v1/chat/completions", { model: "nope", messages: MESSAGES });
    expect(notFound.status).toBe(404);
    expect(await notFound.json()).toEqual({
      error: { message: "The model `nope` does not exist.", type: "NotFoundError", param: "model", code: 404 },
    });
    const cases: [Json, number, string][] = [
      [{ model: "sim-chat", messages: [] }, 400, "BadRequestError"],
      [{ model: "sim-chat" }, 400, "Bad Request"],
      [{ model: "sim-embed", messages: MESSAGES }, 400, "BadRequestError"],
      [{ model: "sim-chat", messages: MESSAGES, max_tokens: 9000 }, 400, "BadRequestError"],
      [{ model: "sim-chat", messages: MESSAGES, tool_choice: "required" }, 400, "BadRequestError"],
      [{ model: "sim-chat", messages: MESSAGES, top_logprobs: 2 }, 400, "BadRequestError"],
    ];
    for (const [body, status, type] of cases) {
      const res = await post("/v1/chat/completions", body);
      const json = (await res.json()) as { error: { type: string; code: number; message: string } };
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(json.error).toMatchObject({ type, code: status });
    }
    const plain = await fetch(`${sim.url}/v1/chat/completions`, { method: "POST", body: "{}" });
    expect(plain.status).toBe(400);

    sim.setOptions({ errorShape: "legacy" });
    const legacy = await post("/v1/chat/completions", { model: "nope", messages: MESSAGES });
    expect(await legacy.json()).toEqual({
      object: "error",
      message: "The model `nope` does not exist.",
      type: "NotFoundError",
      param: "model",
      code: 404,
    });
  });

  it("fails on demand with failureRate, failureStatus and retry-after", async () => {
    sim.setOptions({ failureRate: 1 });
    const res = await post("/v1/chat/completions", { model: "sim-chat", messages: MESSAGES });
    expect(res.status).toBe(500);
    expect(await res.json()).toMatchObject({ error: { type: "InternalServerError", code: 500 } });
    sim.setOptions({ failureStatus: 503, failureRetryAfterS: 2 });
    const unavailable = await post("/v1/embeddings", { model: "sim-embed", input: "x" });
    expect(unavailable.status).toBe(503);
    expect(unavailable.headers.get("retry-after")).toBe("2");
    expect(await unavailable.json()).toMatchObject({ error: { type: "Service Unavailable", code: 503 } });
    expect(sim.stats.failed).toBe(2);
  });

  it("can emit vLLM's exact nulls, which OpenAI's schema rejects", async () => {
    sim.setOptions({ vllmQuirks: true });
    const res = await post("/v1/chat/completions", { model: "sim-chat", messages: MESSAGES });
    const body = (await res.json()) as Json & { choices: { message: Json }[]; usage: Json };
    expect(body.choices[0]?.message).toMatchObject({ annotations: null, function_call: null });
    expect(body.usage).toHaveProperty("prompt_tokens_details", null);
    expect(body).toHaveProperty("system_fingerprint", null);
    expect(() => validateOpenAI("CreateChatCompletionResponse", body)).toThrow();
  });
});

describe("chat completions, streaming", () => {
  it("streams like vLLM: role chunk, one chunk per token, finish on the last token, [DONE]", async () => {
    const { chunks } = await streamed();
    expect(chunks).toHaveLength(17);
    expect(chunks[0]?.choices[0]).toMatchObject({ delta: { role: "assistant", content: "" }, finish_reason: null });
    const tokens = chunks.slice(1);
    expect(tokens.slice(0, -1).every((c) => c.choices[0]?.finish_reason === null)).toBe(true);
    expect(tokens.at(-1)?.choices[0]).toMatchObject({ finish_reason: "stop", stop_reason: null });
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks.every((c) => c.model === "sim-chat" && c.usage === undefined)).toBe(true);
    expect(contentOf(chunks)).toBe((await complete()).choices[0]?.message.content);
  });

  it("adds the usage chunk (empty choices) with include_usage, and per-chunk usage when continuous", async () => {
    const { chunks } = await streamed({ stream_options: { include_usage: true } });
    const last = chunks.at(-1);
    expect(last?.choices).toEqual([]);
    expect(last?.usage).toEqual({
      prompt_tokens: countChatPromptTokens(MESSAGES),
      completion_tokens: 16,
      total_tokens: countChatPromptTokens(MESSAGES) + 16,
    });
    expect(chunks.slice(0, -1).every((c) => c.usage === undefined)).toBe(true);
    const cont = await streamed({ stream_options: { include_usage: true, continuous_usage_stats: true } });
    expect(cont.chunks[3]?.usage?.completion_tokens).toBe(3);
  });

  it("streams n choices, each ending with its finish_reason", async () => {
    const { chunks } = await streamed({ n: 2, max_tokens: 3 });
    const finishes = chunks.flatMap((c) => c.choices).filter((c) => c.finish_reason !== null);
    expect(finishes.map((c) => [c.index, c.finish_reason])).toEqual([
      [0, "length"],
      [1, "length"],
    ]);
    expect(contentOf(chunks, 0)).not.toBe(contentOf(chunks, 1));
    expect(chunks.every((c) => c.choices.length === 1)).toBe(true);
  });

  it("honours stop and max_tokens while streaming", async () => {
    const full = contentOf((await streamed()).chunks);
    const stop = ` ${full.split(" ")[3]}`;
    const stopped = await streamed({ stop });
    expect(contentOf(stopped.chunks)).toBe(full.slice(0, full.indexOf(stop)));
    expect(stopped.chunks.at(-1)?.choices[0]).toMatchObject({ finish_reason: "stop", stop_reason: stop });
    const short = await streamed({ max_completion_tokens: 2 });
    expect(short.chunks).toHaveLength(3);
    expect(short.chunks.at(-1)?.choices[0]?.finish_reason).toBe("length");
  });

  it("streams a tool call: id and name first, then argument pieces", async () => {
    const { chunks } = await streamed({ tools: [WEATHER_TOOL], tool_choice: "required" });
    const calls = chunks.slice(1).map((c) => c.choices[0]?.delta.tool_calls?.[0]);
    expect(calls[0]).toMatchObject({ index: 0, type: "function", function: { name: "get_weather" } });
    expect(calls.slice(1).every((c) => c?.id === undefined && c?.index === 0)).toBe(true);
    const args = calls.map((c) => (c?.function as { arguments?: string } | undefined)?.arguments ?? "").join("");
    expect(JSON.parse(args)).toHaveProperty("city");
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe("tool_calls");
  });

  it("puts one logprobs entry in each token chunk", async () => {
    const { chunks } = await streamed({ logprobs: true, top_logprobs: 2, max_tokens: 3 });
    expect(chunks[0]?.choices[0]?.logprobs).toBeNull();
    for (const c of chunks.slice(1)) {
      expect(c.choices[0]?.logprobs?.content).toHaveLength(1);
      expect(c.choices[0]?.logprobs?.content[0]?.token).toBe(c.choices[0]?.delta.content);
    }
  });

  it("sends ': ping' comments when configured, between data frames", async () => {
    sim.setOptions({ pingEveryMs: 20, ttftMs: 150 });
    const { frames, chunks } = await streamed({ max_tokens: 2 });
    const firstData = frames.findIndex((f) => f.kind === "data");
    expect(frames.slice(0, firstData).filter((f) => f.kind === "comment" && f.text === "ping").length).toBeGreaterThan(
      2,
    );
    expect(chunks).toHaveLength(3);
  });

  it("sends a mid-stream error inside the 200 stream, then [DONE]; a 500 when not streaming", async () => {
    sim.setOptions({ midStreamErrorAfter: 3 });
    const res = await post("/v1/chat/completions", { model: "sim-chat", messages: MESSAGES, stream: true });
    expect(res.status).toBe(200);
    const data = (await new SseReader(res).all()).filter((f) => f.kind === "data").map((f) => f.data);
    expect(data).toHaveLength(6);
    expect(data.slice(1, 4).map((d) => (JSON.parse(d) as Chunk).choices[0]?.delta.content !== undefined)).toEqual([
      true,
      true,
      true,
    ]);
    expect(JSON.parse(data[4] ?? "")).toEqual({
      error: { message: "Internal server error", type: "InternalServerError", param: null, code: 500 },
    });
    expect(data[5]).toBe("[DONE]");
    const unary = await post("/v1/chat/completions", { model: "sim-chat", messages: MESSAGES });
    expect(unary.status).toBe(500);
  });

  it("stalls after N chunks with the connection open, until the client gives up", async () => {
    sim.setOptions({ stallAfter: 2 });
    const ac = new AbortController();
    const res = await post(
      "/v1/chat/completions",
      { model: "sim-chat", messages: MESSAGES, stream: true },
      { signal: ac.signal },
    );
    const reader = new SseReader(res);
    for (let i = 0; i < 3; i++) expect(await reader.nextData()).not.toBeNull();
    const next = reader.nextData().catch(() => "aborted");
    const outcome = await Promise.race([next, new Promise((r) => setTimeout(() => r("silence"), 300))]);
    expect(outcome).toBe("silence");
    expect(sim.stats.inFlight).toBe(1);
    const cancelled = sim.waitFor("cancelled");
    ac.abort();
    await cancelled;
    await sim.waitUntil(() => sim.stats.inFlight === 0 && sim.stats.running === 0);
  });

  it("counts a client abort as cancelled and stops generating at once", async () => {
    sim.setOptions({ interTokenMs: 40, completionTokens: 1_000 });
    const ac = new AbortController();
    const res = await post(
      "/v1/chat/completions",
      { model: "sim-chat", messages: MESSAGES, stream: true },
      { signal: ac.signal },
    );
    const reader = new SseReader(res);
    await reader.nextData();
    await reader.nextData();
    expect(sim.stats.running).toBe(1);
    const cancelled = sim.waitFor("cancelled");
    ac.abort();
    const event = await cancelled;
    expect(event).toMatchObject({ path: "/v1/chat/completions", model: "sim-chat" });
    // 1,000 tokens 40 ms apart would run for 40 s: the slot coming back shows the generation loop ended.
    await sim.waitUntil(() => sim.stats.inFlight === 0 && sim.stats.running === 0);
    expect(sim.stats).toMatchObject({ cancelled: 1, completed: 0 });
    const metrics = await (await fetch(`${sim.url}/metrics`)).text();
    expect(metrics).toContain('vllm:num_requests_running{engine="0",model_name="sim-chat"} 0.0');
  });

  it("delays the first token by ttftMs and each next one by interTokenMs", async () => {
    sim.setOptions({ ttftMs: 120, interTokenMs: 30 });
    const t0 = performance.now();
    const res = await post("/v1/chat/completions", {
      model: "sim-chat",
      messages: MESSAGES,
      stream: true,
      max_tokens: 5,
    });
    const headersAt = performance.now();
    const frames = (await new SseReader(res).all()).filter((f) => f.kind === "data");
    expect(frames[0]?.at ?? 0).toBeGreaterThanOrEqual(t0 + 110);
    expect((frames.at(-2)?.at ?? 0) - (frames[1]?.at ?? 0)).toBeGreaterThanOrEqual(4 * 30 - 15);
    expect(headersAt - t0).toBeLessThan((frames[0]?.at ?? 0) - t0);
    const u0 = performance.now();
    await complete({ max_tokens: 5 });
    expect(performance.now() - u0).toBeGreaterThanOrEqual(120 + 4 * 30 - 15);
  });

  it("queues beyond maxNumSeqs and reports running and waiting in /metrics", async () => {
    sim.setOptions({ maxNumSeqs: 1, interTokenMs: 20, completionTokens: 10 });
    const body = { model: "sim-chat", messages: MESSAGES, stream: true };
    const [a, b] = await Promise.all([post("/v1/chat/completions", body), post("/v1/chat/completions", body)]);
    await sim.waitUntil(() => sim.stats.running === 1 && sim.stats.waiting === 1);
    const metrics = await (await fetch(`${sim.url}/metrics`)).text();
    expect(metrics).toContain('vllm:num_requests_running{engine="0",model_name="sim-chat"} 1.0');
    expect(metrics).toContain('vllm:num_requests_waiting{engine="0",model_name="sim-chat"} 1.0');
    for (const r of [a, b]) expect((await new SseReader(r as Response).all()).at(-1)).toMatchObject({ data: "[DONE]" });
    expect(sim.stats).toMatchObject({ running: 0, waiting: 0, completed: 2 });
  });
});
