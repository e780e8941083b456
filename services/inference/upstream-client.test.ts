import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { FormData } from "undici";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createUpstreamClient, UpstreamError, type UpstreamTarget } from "./upstream-client.js";

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** A bare HTTP server whose behaviour each test sets; it counts connections and notices cancelled requests. */
function stubServer() {
  let handler: Handler = (_req, res) => res.end();
  const state = { connections: 0, closedEarly: 0, lastAuth: "" as string | undefined };
  const server = http.createServer((req, res) => {
    state.lastAuth = req.headers.authorization;
    res.once("close", () => {
      if (!res.writableFinished) state.closedEarly++;
    });
    handler(req, res);
  });
  server.on("connection", () => state.connections++);
  return {
    state,
    set(h: Handler) {
      handler = h;
    },
    async start() {
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
    server,
  };
}

const sse = (res: http.ServerResponse) => {
  res.writeHead(200, { "content-type": "text/event-stream" });
  res.flushHeaders();
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("upstream client", () => {
  const stub = stubServer();
  const client = createUpstreamClient();
  let target: UpstreamTarget;
  const timeouts = { connectMs: 1000, headersMs: 2000, firstTokenMs: 2000, idleMs: 2000, totalMs: 10_000 };

  beforeAll(async () => {
    target = { baseUrl: await stub.start(), apiKey: "sk-upstream", timeouts };
  });
  afterEach(() => {
    stub.state.closedEarly = 0;
  });
  afterAll(async () => {
    await client.close();
    stub.server.closeAllConnections();
    await stub.close();
  });

  it("posts JSON with the provider key and reads JSON", async () => {
    stub.set((req, res) => {
      let body = "";
      req.on("data", (c) => {
        body += c;
      });
      req.on("end", () => res.end(JSON.stringify({ echo: JSON.parse(body), path: req.url })));
    });
    const res = await client.postJson(target, "/v1/embeddings", { input: "x" });
    expect(res).toEqual({ status: 200, body: { echo: { input: "x" }, path: "/v1/embeddings" } });
    expect(stub.state.lastAuth).toBe("Bearer sk-upstream");
  });

  it("turns an upstream 4xx into an http failure with its message and status; 5xx and 429 are retryable", async () => {
    stub.set((_req, res) => {
      res.writeHead(400, { "content-type": "application/json" });
      res.end(JSON.stringify({ object: "error", message: "bad ignore_eos", type: "BadRequestError", code: 400 }));
    });
    const e = await client.postJson(target, "/v1/chat/completions", {}).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(UpstreamError);
    expect((e as UpstreamError).failure).toMatchObject({ kind: "http", status: 400, message: "bad ignore_eos" });
    expect((e as UpstreamError).retryable).toBe(false);

    for (const status of [500, 503, 429]) {
      stub.set((_req, res) => {
        res.writeHead(status, { "retry-after": "7" });
        res.end(JSON.stringify({ error: { message: `status ${status}` } }));
      });
      const f = (await client.postJson(target, "/x", {}).catch((err: unknown) => err)) as UpstreamError;
      expect(f.failure).toMatchObject({ kind: "http", status, message: `status ${status}`, retryAfterSeconds: 7 });
      expect(f.retryable).toBe(true);
    }
  });

  it("posts a multipart form (undici sets its content type) with the provider key, and maps failures as postJson", async () => {
    stub.set(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const type = req.headers["content-type"] ?? "";
      const form = await new Response(Buffer.concat(chunks), { headers: { "content-type": type } }).formData();
      const file = form.get("file") as File;
      res.end(JSON.stringify({ type, model: form.get("model"), name: file.name, size: file.size }));
    });
    const form = new FormData();
    form.append("model", "whisper");
    form.append("file", new Blob([new Uint8Array(1000)]), "a.wav");
    const res = await client.postForm(target, "/v1/audio/transcriptions", form);
    expect(res.body).toEqual({
      type: expect.stringMatching(/^multipart\/form-data; boundary=/),
      model: "whisper",
      name: "a.wav",
      size: 1000,
    });
    expect(stub.state.lastAuth).toBe("Bearer sk-upstream");

    stub.set((_req, res) => {
      res.writeHead(503, { "retry-after": "3" });
      res.end(JSON.stringify({ error: { message: "loading" } }));
    });
    const f = (await client.postForm(target, "/x", new FormData()).catch((err: unknown) => err)) as UpstreamError;
    expect(f.failure).toMatchObject({ kind: "http", status: 503, message: "loading", retryAfterSeconds: 3 });
    expect(f.retryable).toBe(true);
  });

  it("reports an unreachable upstream as a retryable connect failure", async () => {
    const dead: UpstreamTarget = { baseUrl: "http://127.0.0.1:1", timeouts };
    const e = (await client.postJson(dead, "/v1/models", {}).catch((err: unknown) => err)) as UpstreamError;
    expect(e.failure.kind).toBe("connect");
    expect(e.retryable).toBe(true);
  });

  it("streams SSE events in order, skipping `: ping` comments, ending at [DONE]", async () => {
    stub.set((_req, res) => {
      sse(res);
      res.write(": ping\n\n");
      for (let i = 0; i < 50; i++) res.write(`data: {"i":${i}}\n\n`);
      // An event split across writes must be reassembled.
      res.write('data: {"i":');
      res.write("50}\n\n");
      res.end("data: [DONE]\n\n");
    });
    const got: number[] = [];
    for await (const data of client.postStream(target, "/v1/chat/completions", { stream: true })) {
      got.push((JSON.parse(data) as { i: number }).i);
    }
    expect(got).toEqual(Array.from({ length: 51 }, (_, i) => i));
  });

  it("keeps the connection alive across streams", async () => {
    stub.set((_req, res) => {
      sse(res);
      res.end('data: {"ok":true}\n\ndata: [DONE]\n\n');
    });
    const before = stub.state.connections;
    for (let i = 0; i < 5; i++) {
      for await (const _ of client.postStream(target, "/s", {})) {
        // drain
      }
    }
    expect(stub.state.connections - before).toBeLessThanOrEqual(1);
  });

  it("throws a stream_error for an error event inside a 200 stream", async () => {
    stub.set((_req, res) => {
      sse(res);
      res.write('data: {"i":0}\n\n');
      res.end('data: {"error":{"message":"CUDA out of memory","type":"InternalServerError","code":500}}\n\n');
    });
    const seen: string[] = [];
    const err = await (async () => {
      for await (const d of client.postStream(target, "/s", {})) seen.push(d);
    })().catch((e: unknown) => e);
    expect(seen).toEqual(['{"i":0}']);
    expect((err as UpstreamError).failure).toMatchObject({ kind: "stream_error", message: "CUDA out of memory" });
    expect((err as UpstreamError).retryable).toBe(false);
  });

  it("times out a stalled stream (idle between chunks) and a silent one (first token)", async () => {
    stub.set((_req, res) => {
      sse(res);
      res.write('data: {"i":0}\n\n');
      // then nothing: stalled
    });
    const stalled = { ...target, timeouts: { ...timeouts, idleMs: 200 } };
    const e1 = await (async () => {
      for await (const _ of client.postStream(stalled, "/s", {})) {
        // reading
      }
    })().catch((e: unknown) => e);
    expect((e1 as UpstreamError).failure).toMatchObject({ kind: "timeout", phase: "idle" });

    stub.set((_req, res) => {
      sse(res);
      res.write(": ping\n\n");
    });
    const silent = { ...target, timeouts: { ...timeouts, firstTokenMs: 200, idleMs: 5000 } };
    const e2 = await (async () => {
      for await (const _ of client.postStream(silent, "/s", {})) {
        // reading
      }
    })().catch((e: unknown) => e);
    expect((e2 as UpstreamError).failure).toMatchObject({ kind: "timeout", phase: "first_token" });
  });

  it("cancels the upstream request within 100 ms when the caller aborts or stops reading", async () => {
    stub.set((_req, res) => {
      sse(res);
      const t = setInterval(() => res.write('data: {"tick":1}\n\n'), 5);
      res.once("close", () => clearInterval(t));
    });
    const ac = new AbortController();
    let n = 0;
    const run = (async () => {
      for await (const _ of client.postStream(target, "/s", {}, ac.signal)) n++;
    })().catch((e: unknown) => e);
    await sleep(60);
    const t0 = performance.now();
    ac.abort();
    expect(((await run) as UpstreamError).failure.kind).toBe("aborted");
    while (stub.state.closedEarly === 0 && performance.now() - t0 < 1000) await sleep(5);
    expect(stub.state.closedEarly).toBe(1);
    expect(performance.now() - t0).toBeLessThan(100);
    expect(n).toBeGreaterThan(0);

    // A consumer that breaks out of the loop also frees the upstream.
    for await (const _ of client.postStream(target, "/s", {})) break;
    const t1 = performance.now();
    while (stub.state.closedEarly < 2 && performance.now() - t1 < 1000) await sleep(5);
    expect(stub.state.closedEarly).toBe(2);
  });
});
