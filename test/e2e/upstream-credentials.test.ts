import fs from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMember, createRole } from "../support/governance.js";
import { expectOpenAIError, validateOpenAI } from "../support/openai-schema.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { type Simulator, startSimulator } from "../upstream/simulator.js";

/**
 * What a caller sees of an upstream's error: never the provider's API key, even when the upstream quotes the
 * credentials it was sent (some servers and proxies do); never a 401 for the gateway's own key problem (an OpenAI
 * SDK would tell the caller their key is invalid); the upstream's `param` and string `code` when it names them.
 */
const PROVIDER_KEY = "sk-provider-SECRET-0123456789abcdef";

/** An upstream that quotes the Authorization header it got in every error, per upstream model name. */
function leakyUpstream(): http.Server {
  return http.createServer((req, res) => {
    let text = "";
    req.on("data", (c: Buffer) => {
      text += c.toString();
    });
    req.on("end", () => {
      const auth = req.headers.authorization ?? "";
      if (req.method === "GET") {
        res.setHeader("content-type", "application/json");
        const data = ["up-bad-key", "up-400", "up-429", "up-stream-err"].map((id) => ({
          id,
          object: "model",
          max_model_len: 8192,
        }));
        res.end(JSON.stringify({ object: "list", data }));
        return;
      }
      const body = JSON.parse(text) as { model: string; stream?: boolean };
      if (body.model === "up-bad-key") {
        res.writeHead(401, { "content-type": "application/json" });
        res.end(
          JSON.stringify({ error: { message: `Incorrect API key provided: ${auth}`, type: "invalid_request_error" } }),
        );
      } else if (body.model === "up-429") {
        res.writeHead(429, { "content-type": "application/json" });
        const error = {
          message: "You exceeded your current quota.",
          type: "insufficient_quota",
          code: "insufficient_quota",
        };
        res.end(JSON.stringify({ error }));
      } else if (body.model === "up-400") {
        res.writeHead(400, { "content-type": "application/json" });
        const message = `This model's maximum context length is 4096 tokens (request authorized by ${auth}).`;
        res.end(
          JSON.stringify({
            error: { message, type: "invalid_request_error", param: "messages", code: "context_length_exceeded" },
          }),
        );
      } else {
        res.writeHead(200, { "content-type": "text/event-stream" });
        const chunk = {
          id: "c1",
          object: "chat.completion.chunk",
          created: 1,
          model: body.model,
          choices: [{ index: 0, delta: { role: "assistant", content: "Hi" }, finish_reason: null }],
        };
        res.write(`data: ${JSON.stringify(chunk)}\n\n`);
        res.end(`data: ${JSON.stringify({ error: { message: `engine failed for ${auth}`, code: 500 } })}\n\n`);
      }
    });
  });
}

describe("upstream errors and the provider's credentials", () => {
  let leaky: http.Server;
  let sim: Simulator;
  let t: TestPlatform;
  let dir: string;
  let client: OpenAI;
  let memberKey: string;

  beforeAll(async () => {
    leaky = leakyUpstream();
    await new Promise<void>((r) => leaky.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(leaky.address() as AddressInfo).port}`;
    sim = await startSimulator({ completionTokens: 4 });
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-upstream-creds-"));
    const provider = (model: string) => `{ type: openai, url: "${url}", key: "${PROVIDER_KEY}", model_name: ${model} }`;
    const file = path.join(dir, "models.yaml");
    await fs.writeFile(
      file,
      [
        "models:",
        "  - name: bad-key",
        "    type: text-generation",
        `    providers: [${provider("up-bad-key")}]`,
        "  - name: rejects",
        "    type: text-generation",
        `    providers: [${provider("up-400")}]`,
        "  - name: out-of-quota",
        "    type: text-generation",
        `    providers: [${provider("up-429")}]`,
        "  - name: breaks",
        "    type: text-generation",
        `    providers: [${provider("up-stream-err")}]`,
        // One provider refuses the gateway's key, the other serves: the caller never notices.
        "  - name: half-bad",
        "    type: text-generation",
        "    providers:",
        `      - ${provider("up-bad-key")}`,
        `      - { type: vllm, url: "${sim.url}", model_name: sim-chat }`,
        "",
      ].join("\n"),
    );
    t = await startTestPlatform({ env: { PASSERELLE_MODELS_FILE: file } });
    const roleId = await createRole(t.httpUrl, t.adminKey, {
      "bad-key": {},
      rejects: {},
      "out-of-quota": {},
      breaks: {},
      "half-bad": {},
    });
    memberKey = (await createMember(t.httpUrl, t.adminKey, roleId)).keys[0] as string;
    client = new OpenAI({ apiKey: memberKey, baseURL: `${t.httpUrl}/v1`, maxRetries: 0 });
  });

  afterAll(async () => {
    await t?.close();
    await sim?.close();
    await new Promise<void>((r) => leaky?.close(() => r()));
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  const chat = (model: string, stream = false) =>
    fetch(`${t.httpUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${memberKey}`, "content-type": "application/json" },
      body: JSON.stringify({ model, stream, messages: [{ role: "user", content: "hi" }] }),
    });

  it("answers 503 upstream_auth_failed when the provider refuses the gateway's key, without quoting it", async () => {
    for (const stream of [false, true]) {
      const res = await chat("bad-key", stream);
      const body = await expectOpenAIError(res, 503, "service_unavailable_error");
      expect(body.error.code).toBe("upstream_auth_failed");
      expect(JSON.stringify(body)).not.toContain(PROVIDER_KEY);
    }
    // The SDK maps it to a server error, not to AuthenticationError (which would blame the caller's key).
    const err = await client.chat.completions
      .create({ model: "bad-key", messages: [{ role: "user", content: "hi" }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect(err).not.toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it("tries another provider when one refuses the gateway's key", async () => {
    for (let i = 0; i < 4; i++) {
      const res = await client.chat.completions.create({
        model: "half-bad",
        messages: [{ role: "user", content: "hi" }],
      });
      validateOpenAI("CreateChatCompletionResponse", JSON.parse(JSON.stringify(res)));
      expect(res.model).toBe("half-bad");
    }
  });

  it("passes an upstream 4xx through with its param and code, the provider's key redacted", async () => {
    const res = await chat("rejects");
    const body = await expectOpenAIError(res, 400, "invalid_request_error");
    expect(body.error.param).toBe("messages");
    expect(body.error.code).toBe("context_length_exceeded");
    expect(body.error.message).toContain("maximum context length is 4096 tokens");
    expect(body.error.message).toContain("[redacted]");
    expect(body.error.message).not.toContain(PROVIDER_KEY);
  });

  it("never passes on the code of a provider's 429: it speaks of the gateway's account, not the caller's", async () => {
    const res = await chat("out-of-quota");
    const body = await expectOpenAIError(res, 429, "rate_limit_error");
    expect(body.error.code).toBe("upstream_rejected");
  });

  it("redacts the provider's key from an error sent inside a stream", async () => {
    const res = await chat("breaks", true);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('"content":"Hi"');
    const events = text.split("\n\n").filter((e) => e.startsWith("data: {"));
    const last = JSON.parse((events.at(-1) as string).slice(6)) as { error: { message: string } };
    expect(last.error.message).toContain("engine failed for Bearer [redacted]");
    expect(text).not.toContain(PROVIDER_KEY);
  });
});
