import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createSseWriter } from "./sse.js";

/** The SSE writer against a real socket: chunked framing any HTTP client reads, and back-pressure from a slow reader. */
describe("createSseWriter", () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  });

  async function serve(handler: (write: ReturnType<typeof createSseWriter>) => Promise<void>): Promise<string> {
    server = createServer((_req, res) => {
      void handler(createSseWriter(res, { "x-test": "1" }));
    });
    await new Promise<void>((r) => server?.listen(0, "127.0.0.1", r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it("frames each event as OpenAI does, in chunks an HTTP client decodes, multi-byte text included", async () => {
    const url = await serve(async (sse) => {
      await sse.event({ a: "é😀" });
      await sse.event({ b: 2 });
      await sse.done();
    });
    const res = await fetch(url);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(res.headers.get("x-test")).toBe("1");
    expect(res.headers.get("transfer-encoding")).toBe("chunked");
    expect(await res.text()).toBe('data: {"a":"é😀"}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n');
    // The connection stays usable (the last chunk was written): a second request on it works.
    expect((await fetch(url)).status).toBe(200);
  });

  it("waits for the socket to drain when the client does not read, then delivers everything in order", async () => {
    const big = "x".repeat(64 * 1024);
    let pending = 0;
    let wrote = 0;
    let resolveStalled: (() => void) | undefined;
    const stalled = new Promise<void>((r) => {
      resolveStalled = r;
    });
    const url = await serve(async (sse) => {
      for (let i = 0; i < 200; i++) {
        // A promise means the socket's buffer is full: the writer waits before the next event.
        const full = sse.event({ i, big });
        if (full) {
          pending++;
          resolveStalled?.();
          await full;
        }
        wrote++;
      }
      await sse.done();
    });
    const res = await fetch(url);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await stalled; // the writer is blocked on a full socket, the client reading nothing yet
    expect(pending).toBeGreaterThan(0);
    expect(wrote).toBeLessThan(200);
    const decoder = new TextDecoder();
    let text = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    const events = text.split("\n\n").filter(Boolean);
    expect(events).toHaveLength(201);
    expect(events.slice(0, 200).map((e) => (JSON.parse(e.slice(6)) as { i: number }).i)).toEqual(
      Array.from({ length: 200 }, (_, i) => i),
    );
    expect(events[200]).toBe("data: [DONE]");
  });
});
