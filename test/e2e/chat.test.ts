import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { validateOpenAI } from "../support/openai-schema.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { type Simulator, startSimulator } from "../upstream/simulator.js";
import { SseReader } from "../upstream/sse.js";

/**
 * Chat completions end to end: the official openai SDK → REST bridge → InferenceService → three vLLM simulators.
 * Every body and chunk is checked against OpenAI's published schemas.
 */
describe("chat completions", () => {
  let sims: Simulator[];
  let t: TestPlatform;
  let openai: OpenAI;
  let dir: string;

  beforeAll(async () => {
    sims = await Promise.all([0, 1, 2].map(() => startSimulator({ completionTokens: 12 })));
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-chat-"));
    const file = path.join(dir, "models.yaml");
    const providers = sims
      .map((s) => `      - { type: vllm, url: "${s.url}", model_name: sim-chat, timeout_s: 30, max_concurrency: 256 }`)
      .join("\n");
    await fs.writeFile(
      file,
      `models:\n  - name: qwen2.5-7b\n    aliases: [chat-default]\n    type: text-generation\n    providers:\n${providers}\n`,
    );
    t = await startTestPlatform({
      env: {
        PASSERELLE_MODELS_FILE: file,
        PASSERELLE_UPSTREAM_IDLE_TIMEOUT_MS: "600",
        PASSERELLE_UPSTREAM_FIRST_TOKEN_TIMEOUT_MS: "2000",
        PASSERELLE_UPSTREAM_COOLDOWN_MS: "60000",
      },
    });
    openai = new OpenAI({ baseURL: `${t.httpUrl}/v1`, apiKey: t.adminKey, maxRetries: 0 });
  });
  beforeEach(() => {
    for (const s of sims) s.reset();
  });
  afterAll(async () => {
    await t?.close();
    await Promise.all(sims.map((s) => s.close()));
    await fs.rm(dir, { recursive: true, force: true });
  });

  const lastBody = () => {
    const bodies = sims.map((s) => s.stats.lastRequest["/v1/chat/completions"]).filter(Boolean);
    return bodies[bodies.length - 1] as Record<string, unknown>;
  };

  it("answers through an alias, names the model asked for, injects no default and forwards vendor extras", async () => {
    const res = await openai.chat.completions.create({
      model: "chat-default",
      messages: [{ role: "user", content: "Bonjour" }],
      // @ts-expect-error vLLM extras are not in the SDK's types; they must still be forwarded.
      top_k: 40,
      repetition_penalty: 1.05,
    });
    validateOpenAI("CreateChatCompletionResponse", res);
    expect(res.model).toBe("chat-default");
    expect(res.choices[0]?.message.content).toBeTruthy();
    expect(res.usage?.completion_tokens).toBeGreaterThan(0);
    expect(lastBody()).toEqual({
      model: "sim-chat",
      messages: [{ role: "user", content: "Bonjour" }],
      top_k: 40,
      repetition_penalty: 1.05,
    });
  });

  it("streams chunks that match the unary answer, with a final usage chunk when asked", async () => {
    const messages = [{ role: "user" as const, content: "Raconte une histoire" }];
    const whole = await openai.chat.completions.create({ model: "qwen2.5-7b", messages, seed: 7 });
    const stream = await openai.chat.completions.create({
      model: "qwen2.5-7b",
      messages,
      seed: 7,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    const chunks = [];
    for await (const chunk of stream) {
      validateOpenAI("CreateChatCompletionStreamResponse", chunk);
      chunks.push(chunk);
      text += chunk.choices[0]?.delta.content ?? "";
    }
    expect(text).toBe(whole.choices[0]?.message.content);
    const last = chunks[chunks.length - 1];
    expect(last?.choices).toEqual([]);
    expect(last?.usage).toMatchObject({ completion_tokens: whole.usage?.completion_tokens });
    expect(chunks.slice(0, -1).every((c) => c.model === "qwen2.5-7b" && !c.usage)).toBe(true);
    // As OpenAI's: the chunks before the last one say "usage": null.
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
  });

  it("asks the upstream for usage but strips it when the client did not ask", async () => {
    const stream = await openai.chat.completions.create({
      model: "qwen2.5-7b",
      messages: [{ role: "user", content: "x" }],
      stream: true,
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.every((c) => c.choices.length > 0 && c.usage == null)).toBe(true);
    expect(lastBody().stream_options).toEqual({ include_usage: true });
  });

  it("counts tokens itself when the upstream sends no usage", async () => {
    for (const s of sims) s.setOptions({ omitUsage: true });
    const messages = [{ role: "user" as const, content: "Bonjour, comment allez-vous ?" }];
    const res = await openai.chat.completions.create({ model: "qwen2.5-7b", messages });
    validateOpenAI("CreateChatCompletionResponse", res);
    expect(res.usage?.prompt_tokens).toBeGreaterThan(5);
    expect(res.usage?.completion_tokens).toBeGreaterThan(0);
    expect(res.usage?.total_tokens).toBe((res.usage?.prompt_tokens ?? 0) + (res.usage?.completion_tokens ?? 0));
    const stream = await openai.chat.completions.create({
      model: "qwen2.5-7b",
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    let last: OpenAI.Chat.Completions.ChatCompletionChunk | undefined;
    for await (const c of stream) {
      validateOpenAI("CreateChatCompletionStreamResponse", c);
      last = c;
    }
    expect(last?.choices).toEqual([]);
    expect(last?.usage?.prompt_tokens).toBe(res.usage?.prompt_tokens);
    expect(last?.usage?.completion_tokens).toBeGreaterThan(0);
  });

  it("returns tool calls", async () => {
    const res = await openai.chat.completions.create({
      model: "qwen2.5-7b",
      messages: [{ role: "user", content: "Quel temps fait-il à Paris ?" }],
      tools: [
        {
          type: "function",
          function: {
            name: "get_weather",
            parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
          },
        },
      ],
      tool_choice: "required",
    });
    validateOpenAI("CreateChatCompletionResponse", res);
    expect(res.choices[0]?.finish_reason).toBe("tool_calls");
    const call = res.choices[0]?.message.tool_calls?.[0];
    expect(call?.type).toBe("function");
    expect(call && "function" in call ? call.function.name : "").toBe("get_weather");
  });

  it("maps each error class the SDK knows", async () => {
    const msg = [{ role: "user" as const, content: "x" }];
    await expect(openai.chat.completions.create({ model: "nope", messages: msg })).rejects.toBeInstanceOf(
      OpenAI.NotFoundError,
    );
    await expect(openai.chat.completions.create({ model: "qwen2.5-7b", messages: [] })).rejects.toBeInstanceOf(
      OpenAI.BadRequestError,
    );
    const anonymous = new OpenAI({ baseURL: `${t.httpUrl}/v1`, apiKey: "sk-nope-nope-nope-nope", maxRetries: 0 });
    await expect(anonymous.chat.completions.create({ model: "qwen2.5-7b", messages: msg })).rejects.toBeInstanceOf(
      OpenAI.AuthenticationError,
    );
    // An upstream 4xx keeps its status, message and the field it names.
    const rejected = await openai.chat.completions
      .create({ model: "qwen2.5-7b", messages: msg, top_logprobs: 2 })
      .catch((e: unknown) => e);
    expect(rejected).toBeInstanceOf(OpenAI.BadRequestError);
    expect((rejected as InstanceType<typeof OpenAI.APIError>).message).toMatch(/`logprobs` must be set/);
    expect((rejected as InstanceType<typeof OpenAI.APIError>).param).toBe("top_logprobs");
    // Every provider overloaded: their 429 comes through as a 429 (RateLimitError), with Retry-After.
    for (const s of sims) s.setOptions({ failureRate: 1, failureStatus: 429, failureRetryAfterS: 2 });
    const limited = await openai.chat.completions
      .create({ model: "qwen2.5-7b", messages: msg })
      .catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(OpenAI.RateLimitError);
    expect((limited as InstanceType<typeof OpenAI.APIError>).headers?.get("retry-after")).toBe("2");
    for (const s of sims) s.reset();
    // An expired account: 403 (PermissionDeniedError).
    const role = (await (
      await fetch(`${t.httpUrl}/v1/admin/roles`, {
        method: "POST",
        headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "application/json" },
        body: JSON.stringify({ name: "expired-chat", permissions: ["admin"] }),
      })
    ).json()) as { id: string };
    const user = (await (
      await fetch(`${t.httpUrl}/v1/admin/users`, {
        method: "POST",
        headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "application/json" },
        body: JSON.stringify({ email: "expired-chat@test.local", role: role.id }),
      })
    ).json()) as { id: string };
    const key = (await (
      await fetch(`${t.httpUrl}/v1/admin/keys`, {
        method: "POST",
        headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "application/json" },
        body: JSON.stringify({ name: "k", user: user.id }),
      })
    ).json()) as { key: string };
    await fetch(`${t.httpUrl}/v1/admin/users/${user.id}`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ expires: Math.floor(Date.now() / 1000) - 60 }),
    });
    const expired = new OpenAI({ baseURL: `${t.httpUrl}/v1`, apiKey: key.key, maxRetries: 0 });
    await expect(expired.chat.completions.create({ model: "qwen2.5-7b", messages: msg })).rejects.toBeInstanceOf(
      OpenAI.PermissionDeniedError,
    );
    // Every provider failing: 503 after trying each of them once.
    const count = () => sims.reduce((a, s) => a + (s.stats.requests["/v1/chat/completions"] ?? 0), 0);
    const before = count();
    for (const s of sims) s.setOptions({ failureRate: 1, failureStatus: 500 });
    const err = await openai.chat.completions.create({ model: "qwen2.5-7b", messages: msg }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
    expect(count() - before).toBe(3);
  });

  it("fails over to another provider when one is down, before the first byte", async () => {
    sims[0]?.setOptions({ failureRate: 1, failureStatus: 503 });
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        openai.chat.completions.create({ model: "qwen2.5-7b", messages: [{ role: "user", content: `q${i}` }] }),
      ),
    );
    expect(results.every((r) => r.choices.length === 1)).toBe(true);
  });

  it("times out a stalled stream with an error in OpenAI's shape inside the stream", async () => {
    for (const s of sims) s.setOptions({ stallAfter: 2 });
    const res = await fetch(`${t.httpUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "qwen2.5-7b", messages: [{ role: "user", content: "x" }], stream: true }),
    });
    expect(res.status).toBe(200);
    const reader = new SseReader(res);
    const frames: string[] = [];
    for (let f = await reader.next(); f; f = await reader.next()) if (f.kind === "data") frames.push(f.data);
    const last = JSON.parse(frames[frames.length - 1] ?? "{}");
    validateOpenAI("ErrorResponse", last);
    expect(last.error.type).toBe("timeout_error");
  });

  it("passes an error sent inside a 200 stream on to the client, in OpenAI's shape", async () => {
    for (const s of sims) s.setOptions({ midStreamErrorAfter: 3 });
    const stream = await openai.chat.completions.create({
      model: "qwen2.5-7b",
      messages: [{ role: "user", content: "x" }],
      stream: true,
    });
    let received = 0;
    const err = await (async () => {
      for await (const _ of stream) received++;
    })().catch((e: unknown) => e);
    expect(received).toBeGreaterThan(0);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(String((err as Error).message)).toMatch(/generating/);
  });

  it("passes the preflight of the OpenAI SDK in a browser, and lets the page read the rate-limit headers", async () => {
    // What a browser sends before openai.chat.completions.create() from a page (openai-node's header set).
    const requested =
      "authorization,content-type,x-stainless-arch,x-stainless-lang,x-stainless-os,x-stainless-package-version," +
      "x-stainless-retry-count,x-stainless-runtime,x-stainless-runtime-version,x-stainless-timeout";
    const preflight = await fetch(`${t.httpUrl}/v1/chat/completions`, {
      method: "OPTIONS",
      headers: {
        origin: "http://app.example.test",
        "access-control-request-method": "POST",
        "access-control-request-headers": requested,
      },
    });
    expect(preflight.status).toBe(204);
    const allowed = (preflight.headers.get("access-control-allow-headers") ?? "").toLowerCase().split(/\s*,\s*/);
    expect(allowed).toEqual(expect.arrayContaining(requested.split(",")));
    const res = await fetch(`${t.httpUrl}/v1/chat/completions`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${t.adminKey}`,
        "content-type": "application/json",
        origin: "http://app.example.test",
      },
      body: JSON.stringify({ model: "qwen2.5-7b", messages: [{ role: "user", content: "x" }] }),
    });
    expect(res.status).toBe(200);
    const exposed = (res.headers.get("access-control-expose-headers") ?? "").toLowerCase().split(/\s*,\s*/);
    for (const kind of ["requests", "tokens"]) {
      for (const what of ["limit", "remaining", "reset"]) expect(exposed).toContain(`x-ratelimit-${what}-${kind}`);
    }
    expect(exposed).toEqual(expect.arrayContaining(["x-request-id", "retry-after"]));
    await res.text();
  });

  it("streams to a browser origin with CORS headers and the request id", async () => {
    const res = await fetch(`${t.httpUrl}/v1/chat/completions`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${t.adminKey}`,
        "content-type": "application/json",
        origin: "http://app.example.test",
        "x-request-id": "stream-req-1",
      },
      body: JSON.stringify({ model: "qwen2.5-7b", messages: [{ role: "user", content: "x" }], stream: true }),
    });
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    expect(res.headers.get("access-control-allow-origin")).toBeTruthy();
    expect(res.headers.get("x-request-id")).toBe("stream-req-1");
    await res.text();
  });

  it("cancels generation upstream when the client goes away", async () => {
    for (const s of sims) s.setOptions({ interTokenMs: 20, completionTokens: 500 });
    const ac = new AbortController();
    const cancelled = Promise.race(sims.map((s) => s.waitFor("cancelled", 5000)));
    const res = await fetch(`${t.httpUrl}/v1/chat/completions`, {
      method: "POST",
      signal: ac.signal,
      headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "qwen2.5-7b", messages: [{ role: "user", content: "long" }], stream: true }),
    });
    const reader = new SseReader(res);
    await reader.next();
    await reader.next();
    ac.abort();
    await expect(cancelled).resolves.toMatchObject({ name: "cancelled" });
  });

  it("delivers every chunk of 200 concurrent streams in order", async () => {
    for (const s of sims) s.setOptions({ completionTokens: 64, interTokenMs: 1 });
    const run = async () => {
      const res = await fetch(`${t.httpUrl}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "qwen2.5-7b", messages: [{ role: "user", content: "s" }], stream: true }),
      });
      const reader = new SseReader(res);
      const contents: string[] = [];
      let done = false;
      for (let f = await reader.next(); f; f = await reader.next()) {
        if (f.kind !== "data") continue;
        if (f.data === "[DONE]") done = true;
        else contents.push(JSON.parse(f.data).choices[0]?.delta?.content ?? "");
      }
      return { done, contents };
    };
    const expected = await run();
    expect(expected.done).toBe(true);
    // One role chunk, then 64 token chunks (the last one carries finish_reason).
    expect(expected.contents.length).toBe(65);
    const all = await Promise.all(Array.from({ length: 200 }, run));
    for (const r of all) expect(r).toEqual(expected);
  }, 120_000);
});
