import { createServer, type Server, type ServerResponse } from "node:http";
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

  async function serve(
    handler: (write: ReturnType<typeof createSseWriter>, res: ServerResponse) => Promise<void>,
  ): Promise<string> {
    server = createServer((_req, res) => {
      void handler(createSseWriter(res, { "x-test": "1" }), res);
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

  it("writes the events of one tick in one system call, and never holds an event for a later one", async () => {
    const writes: number[] = [];
    let flushedBeforeNextTick: number | undefined;
    const url = await serve(async (sse, res) => {
      await sse.event({ warm: true });
      await new Promise((r) => setImmediate(r));
      // The socket's own write methods, spied on: each call is one system call.
      const raw = res.socket as unknown as {
        _writev: (chunks: unknown[], cb: () => void) => void;
        _write: (chunk: unknown, enc: string, cb: () => void) => void;
      };
      const writev = raw._writev.bind(raw);
      const write = raw._write.bind(raw);
      raw._writev = (chunks, cb) => {
        writes.push(chunks.length);
        writev(chunks, cb);
      };
      raw._write = (chunk, enc, cb) => {
        writes.push(1);
        write(chunk, enc, cb);
      };
      // Three events in one tick (what a gateway that fell behind reads from the upstream at once): one write.
      sse.event({ i: 1 });
      sse.event({ i: 2 });
      sse.event({ i: 3 });
      await new Promise((r) => setImmediate(r));
      // An event alone leaves at the end of its own tick, before any timer or I/O callback could run.
      sse.event({ i: 4 });
      await new Promise<void>((r) => process.nextTick(r));
      flushedBeforeNextTick = writes.length;
      await new Promise((r) => setImmediate(r));
      await sse.done();
    });
    const res = await fetch(url);
    const text = await res.text();
    expect(text.split("\n\n").filter(Boolean)).toEqual([
      'data: {"warm":true}',
      'data: {"i":1}',
      'data: {"i":2}',
      'data: {"i":3}',
      'data: {"i":4}',
      "data: [DONE]",
    ]);
    expect(writes.slice(0, 2)).toEqual([3, 1]);
    expect(flushedBeforeNextTick).toBe(2);
  });

  it("sends the headers in the same write as the first event", async () => {
    const writes: string[][] = [];
    server = createServer((_req, res) => {
      const raw = res.socket as unknown as {
        _writev: (chunks: { chunk: unknown }[], cb: () => void) => void;
        _write: (chunk: unknown, enc: string, cb: () => void) => void;
      };
      const writev = raw._writev.bind(raw);
      const write = raw._write.bind(raw);
      raw._writev = (chunks, cb) => {
        writes.push(chunks.map((c) => String(c.chunk)));
        writev(chunks, cb);
      };
      raw._write = (chunk, enc, cb) => {
        writes.push([String(chunk)]);
        write(chunk, enc, cb);
      };
      const sse = createSseWriter(res, {});
      sse.event({ first: true });
      setImmediate(() => void sse.done());
    });
    await new Promise<void>((r) => server?.listen(0, "127.0.0.1", r));
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    expect(await res.text()).toBe('data: {"first":true}\n\ndata: [DONE]\n\n');
    const first = writes[0] ?? [];
    expect(first).toHaveLength(2);
    expect(first[0]).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(first[1]).toContain('data: {"first":true}');
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
