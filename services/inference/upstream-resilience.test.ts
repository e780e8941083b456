// Stream timeouts (first token, then idle), error events inside a 200 stream, and the health probe of hosted
// OpenAI-compatible providers: the upstream client and the router against small HTTP stubs.
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QUICK_INFERENCE_SETTINGS } from "../../test/support/inference-settings.js";
import { setupInference } from "./index.js";
import type { ProviderRoute } from "./provider-router.js";
import { createUpstreamClient, UpstreamError, type UpstreamTarget } from "./upstream-client.js";

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function stub() {
  let handler: Handler = (_q, r) => r.end();
  const server = http.createServer((q, r) => handler(q, r));
  return {
    set: (h: Handler) => {
      handler = h;
    },
    async start() {
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe("upstream streams: timeouts and error events", () => {
  const s = stub();
  const client = createUpstreamClient();
  let base = "";
  beforeAll(async () => {
    base = await s.start();
  });
  afterAll(async () => {
    await client.close();
    await s.close();
  });

  it("lets a first token come within firstTokenMs even when that is longer than the idle limit", async () => {
    s.set((_q, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.flushHeaders();
      setTimeout(() => {
        res.write('data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[]}\n\n');
        res.end("data: [DONE]\n\n");
      }, 1500);
    });
    const target: UpstreamTarget = {
      baseUrl: base,
      timeouts: { connectMs: 1000, headersMs: 10_000, firstTokenMs: 3000, idleMs: 500, totalMs: 10_000 },
    };
    const got: string[] = [];
    let failure: unknown;
    try {
      for await (const ev of client.postStream(target, "/v1/chat/completions", {})) got.push(ev);
    } catch (err) {
      failure = err instanceof UpstreamError ? err.failure : err;
    }
    expect(failure).toBeUndefined();
    expect(got).toHaveLength(1);
  });

  it("reports an error event written with spaces (Python's json.dumps) as a stream error", async () => {
    s.set((_q, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write('data: {"object": "error", "message": "boom", "type": "InternalServerError", "code": 500}\n\n');
      res.end("data: [DONE]\n\n");
    });
    const target: UpstreamTarget = {
      baseUrl: base,
      timeouts: { connectMs: 1000, headersMs: 5000, firstTokenMs: 5000, idleMs: 5000, totalMs: 5000 },
    };
    const got: string[] = [];
    let failure: unknown;
    try {
      for await (const ev of client.postStream(target, "/v1/chat/completions", {})) got.push(ev);
    } catch (err) {
      failure = err instanceof UpstreamError ? err.failure : err;
    }
    expect({ got, failure }).toMatchObject({ got: [], failure: { kind: "stream_error" } });
  });
});

describe("passive health of a hosted OpenAI-compatible provider", () => {
  const p: ProviderRoute = {
    id: "p1",
    type: "openai",
    baseUrl: "http://x",
    upstreamModel: "m",
    timeoutSeconds: 10,
    weight: 1,
    maxConcurrency: 0,
  };

  it("probes an ejected 'openai' provider with its free model list, since it has no /health", async () => {
    const up = stub();
    const url = await up.start();
    // Like a hosted OpenAI-compatible API: completions work, /health does not exist.
    up.set((req, res) => {
      if (req.url === "/health") {
        res.writeHead(404, { "content-type": "application/json" });
        res.end('{"error":{"message":"Invalid URL (GET /health)"}}');
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
    const inf = setupInference({
      // biome-ignore lint/suspicious/noExplicitAny: not used by the router
      registry: {} as any,
      // biome-ignore lint/suspicious/noExplicitAny: not used by the router
      governor: {} as any,
      defaultMaxTokens: 16,
      settings: QUICK_INFERENCE_SETTINGS,
    });
    const prov = { ...p, baseUrl: url };
    try {
      for (let i = 0; i < 2; i++) (await inf.router.acquire([prov], new Set())).release("failure");
      expect(inf.router.snapshotOf([prov])[0]?.healthy).toBe(false);
      // Cool-down over, probe after probe: the provider would serve (its chat endpoint answers 200).
      let admitted = false;
      for (let i = 0; i < 10 && !admitted; i++) {
        await sleep(150);
        try {
          (await inf.router.acquire([prov], new Set())).release("ok");
          admitted = true;
        } catch {
          // still ejected
        }
      }
      expect(admitted).toBe(true);
    } finally {
      await inf.close();
      await up.close();
    }
  });
});
