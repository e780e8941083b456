import { once } from "node:events";
import http from "node:http";
import net from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Graceful shutdown: stop accepting, let in-flight requests finish, then close. */
describe("graceful shutdown", () => {
  let t: TestPlatform | undefined;
  afterAll(async () => {
    await t?.close().catch(() => {});
  });

  it("finishes a request that is in flight when close() starts, and refuses new connections", async () => {
    t = await startTestPlatform();
    const body = JSON.stringify({ email: t.adminEmail, password: t.adminPassword });
    // A request whose body is only half sent is in flight for sure: the server has parsed its headers and waits.
    const req = http.request(`${t.httpUrl}/v1/auth/login`, {
      method: "POST",
      agent: false,
      headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) },
    });
    const response = once(req, "response") as Promise<[http.IncomingMessage]>;
    req.write(body.slice(0, 10));
    await sleep(300);
    const closing = t.platform.close();
    await sleep(100);
    await expect(fetch(`${t.httpUrl}/health`)).rejects.toThrow();
    req.end(body.slice(10));
    const [res] = await response;
    let text = "";
    for await (const chunk of res) text += chunk;
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(text).key).toMatch(/^sk-/);
    await closing;
  });

  it("serves a request that arrives on a busy kept-alive connection during the drain, then closes that connection", async () => {
    // Fastify's default answered such a request with a 503 of its own shape ({"error","message","statusCode"}),
    // which no OpenAI SDK reads. During the drain the services are still up: the request is served, and its answer
    // says `connection: close`, so that the client's next request goes to another instance.
    const p = await startTestPlatform();
    try {
      const { port } = new URL(p.httpUrl);
      const socket = net.connect(Number(port), "127.0.0.1");
      await once(socket, "connect");
      let raw = "";
      socket.on("data", (d) => {
        raw += d;
      });
      const ended = once(socket, "close");
      const body = JSON.stringify({ email: p.adminEmail, password: p.adminPassword });
      socket.write(
        `POST /v1/auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, 10)}`,
      );
      await sleep(300);
      const closing = p.platform.close();
      await sleep(100);
      // The rest of the first body, and a second request pipelined behind it on the same connection.
      socket.write(
        `${body.slice(10)}GET /v1/models HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${p.adminKey}\r\n\r\n`,
      );
      await ended;
      await closing;
      const answers = raw.split(/(?=HTTP\/1\.1 )/);
      expect(answers).toHaveLength(2);
      expect(answers[0]).toMatch(/^HTTP\/1\.1 200 /);
      expect(answers[1]).toMatch(/^HTTP\/1\.1 200 /);
      expect(answers[1]).toMatch(/\r\nconnection: close\r\n/i);
      expect(answers[1]).toContain('"object":"list"');
    } finally {
      await p.close().catch(() => {});
    }
  });
});
