import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { JsonObject } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InferenceService } from "../../gen/passerelle/inference/v1/inference_service_pb.js";
import { call, createMember, createRole, writeModelsFile } from "../support/governance.js";
import { validateOpenAI } from "../support/openai-schema.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { type Simulator, startSimulator } from "../upstream/simulator.js";

/**
 * What a chat request may generate is reserved before it is forwarded, from the fields that decide it: `n` (or
 * vLLM's `best_of`) times `max_tokens`. None of them may reach the model unreserved: not through `extra` (an RPC
 * caller's vendor fields, forwarded as is), not with a fan-out past OpenAI's bound. `stream_options` on a request
 * that does not stream is refused, as OpenAI does.
 */
describe("chat: the fields a reservation reads", () => {
  let sim: Simulator;
  let t: TestPlatform;
  let dir: string;
  let key: string;
  const messages = [{ role: "user", content: "hello" }];

  beforeAll(async () => {
    sim = await startSimulator({ completionTokens: 20 });
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-reserve-"));
    const file = await writeModelsFile(dir, [
      { name: "x-chat", type: "text-generation", urls: [sim.url], upstreamModel: "sim-chat" },
    ]);
    t = await startTestPlatform({ env: { PASSERELLE_MODELS_FILE: file, PASSERELLE_DEFAULT_MAX_TOKENS: "50" } });
    const role = await createRole(t.httpUrl, t.adminKey, { "x-chat": { tokens_per_minute: 10_000 } });
    key = (await createMember(t.httpUrl, t.adminKey, role)).keys[0] as string;
  });
  afterAll(async () => {
    await t?.close();
    await sim?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  const chatCalls = () => sim.stats.requests["/v1/chat/completions"] ?? 0;
  const rest = (body: Record<string, unknown>) =>
    call(t.httpUrl, "POST", "/v1/chat/completions", { key, body: { model: "x-chat", messages, ...body } });

  it("refuses over RPC the cost fields sent in `extra`, before anything reaches the model", async () => {
    const client = createClient(InferenceService, createConnectTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" }));
    const before = chatCalls();
    const extras: JsonObject[] = [{ max_tokens: 400 }, { n: 3 }, { max_completion_tokens: 9 }, { stream: true }];
    for (const extra of extras) {
      const err = await client
        .createChatCompletion(
          {
            params: {
              model: "x-chat",
              messages: [{ role: 3 /* USER */, content: { case: "text", value: "hello" } }],
              extra,
            },
          },
          { headers: { authorization: `Bearer ${key}` } },
        )
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.InvalidArgument);
      expect((err as ConnectError).rawMessage).toContain(`'${Object.keys(extra)[0]}'`);
    }
    expect(chatCalls()).toBe(before);
  });

  it("answers 400 for n outside 1..128 and a best_of below n, naming the field", async () => {
    for (const [body, param] of [
      [{ n: 0 }, "n"],
      [{ n: 129 }, "n"],
      [{ n: 4294967295, max_tokens: 4294967295 }, "n"],
      [{ n: 3, best_of: 2 }, "best_of"],
      [{ best_of: "3" }, "best_of"],
    ] as const) {
      const res = await rest(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      validateOpenAI("ErrorResponse", res.body);
      expect(res.body.error.param).toBe(param);
    }
  });

  it("reserves n × max_tokens, and best_of × max_tokens when vLLM's best_of is sent", async () => {
    // A role whose token limit fits 2 × 100 completion tokens (plus the prompt) but not 3 × 100.
    const role = await createRole(t.httpUrl, t.adminKey, { "x-chat": { tokens_per_minute: 280 } });
    const tight = (await createMember(t.httpUrl, t.adminKey, role)).keys[0] as string;
    const send = (body: Record<string, unknown>) =>
      call(t.httpUrl, "POST", "/v1/chat/completions", {
        key: tight,
        body: { model: "x-chat", messages, max_tokens: 100, ...body },
      });
    // Refused as too large for the limit (not as exhausted: nothing was spent yet).
    for (const body of [{ n: 3 }, { n: 1, best_of: 3 }]) {
      const refused = await send(body);
      expect(refused.status, JSON.stringify(body)).toBe(429);
      validateOpenAI("ErrorResponse", refused.body);
      expect(refused.body.error.message).toMatch(/^This request \(about 3\d\d tokens/);
    }
    const served = await send({ n: 2 });
    expect(served.status).toBe(200);
    validateOpenAI("CreateChatCompletionResponse", served.body);
  });

  it("refuses stream_options on a request that does not stream (REST and RPC)", async () => {
    for (const body of [{ stream_options: { include_usage: true } }, { stream: false, stream_options: {} }]) {
      const res = await rest(body);
      expect(res.status).toBe(400);
      validateOpenAI("ErrorResponse", res.body);
      expect(res.body.error.param).toBe("stream_options");
    }
    const streamed = await rest({ stream: true, stream_options: { include_usage: true } });
    expect(streamed.status).toBe(200);
    const client = createClient(InferenceService, createConnectTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" }));
    const err = await client
      .createChatCompletion(
        {
          params: {
            model: "x-chat",
            messages: [{ role: 3, content: { case: "text", value: "hello" } }],
            streamOptions: { includeUsage: true },
          },
        },
        { headers: { authorization: `Bearer ${key}` } },
      )
      .catch((e: unknown) => e);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
  });
});
