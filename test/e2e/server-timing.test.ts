import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Role } from "../../gen/passerelle/inference/v1/chat_pb.js";
import { InferenceService } from "../../gen/passerelle/inference/v1/inference_service_pb.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { type Simulator, startSimulator } from "../upstream/simulator.js";

const TTFT_MS = 40;
const TIMING = /^upstream;dur=(\d+\.\d\d), gateway;dur=(\d+\.\d\d)$/;

/** `upstream` and `gateway` of an answer's Server-Timing (both required, in this order). */
function timingOf(res: Response): { upstream: number; gateway: number } {
  const m = TIMING.exec(res.headers.get("server-timing") ?? "");
  expect(m, `server-timing: ${res.headers.get("server-timing")}`).not.toBeNull();
  return { upstream: Number(m?.[1]), gateway: Number(m?.[2]) };
}

/**
 * Every answer of a model call says, in W3C Server-Timing, how long the model servers took (`upstream`) and what the
 * gateway added (`gateway`), so that an operator can tell one from the other per request. The simulator holds each
 * answer `TTFT_MS`: the upstream part is at least that (lower bounds only, no speed assertion).
 */
describe("Server-Timing on model calls", () => {
  let sim: Simulator;
  let t: TestPlatform;
  let dir: string;
  const post = (p: string, body: unknown) =>
    fetch(`${t.httpUrl}${p}`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });

  beforeAll(async () => {
    sim = await startSimulator({ ttftMs: TTFT_MS, completionTokens: 4 });
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-timing-"));
    const file = path.join(dir, "models.yaml");
    await fs.writeFile(
      file,
      `models:\n  - name: chat\n    type: text-generation\n    providers:\n      - { type: vllm, url: "${sim.url}", model_name: sim-chat }\n` +
        `  - name: embed\n    type: text-embeddings-inference\n    providers:\n      - { type: tei, url: "${sim.url}", model_name: sim-embed }\n`,
    );
    t = await startTestPlatform({ env: { PASSERELLE_MODELS_FILE: file } });
  });
  afterAll(async () => {
    await t?.close();
    await sim?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it("on a chat completion", async () => {
    const res = await post("/v1/chat/completions", { model: "chat", messages: [{ role: "user", content: "x" }] });
    expect(res.status).toBe(200);
    const { upstream, gateway } = timingOf(res);
    expect(upstream).toBeGreaterThanOrEqual(TTFT_MS);
    expect(gateway).toBeGreaterThanOrEqual(0);
    await res.text();
  });

  it("on a stream, up to its first event, in the headers that leave with it", async () => {
    const res = await post("/v1/chat/completions", {
      model: "chat",
      messages: [{ role: "user", content: "x" }],
      stream: true,
    });
    expect(res.status).toBe(200);
    expect(timingOf(res).upstream).toBeGreaterThanOrEqual(TTFT_MS);
    expect(await res.text()).toContain("data: [DONE]");
  });

  it("on embeddings", async () => {
    const res = await post("/v1/embeddings", { model: "embed", input: ["a", "b"] });
    expect(res.status).toBe(200);
    expect(timingOf(res).upstream).toBeGreaterThan(0);
    await res.text();
  });

  it("not on a call that reached no model", async () => {
    const models = await fetch(`${t.httpUrl}/v1/models`, { headers: { authorization: `Bearer ${t.adminKey}` } });
    expect(models.headers.get("server-timing")).toBeNull();
    await models.text();
    const refused = await post("/v1/chat/completions", { model: "nope", messages: [{ role: "user", content: "x" }] });
    expect(refused.status).toBe(404);
    expect(refused.headers.get("server-timing")).toBeNull();
    await refused.text();
  });

  it("gives RPC clients the upstream part as a response header", async () => {
    const client = createClient(InferenceService, createConnectTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" }));
    let header: string | null = null;
    await client.createChatCompletion(
      { params: { model: "chat", messages: [{ role: Role.USER, content: { case: "text", value: "x" } }] } },
      { headers: { authorization: `Bearer ${t.adminKey}` }, onHeader: (h) => (header = h.get("server-timing")) },
    );
    expect(header).toMatch(/^upstream;dur=\d+\.\d\d$/);
  });
});
