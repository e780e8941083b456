import { once } from "node:events";
import http from "node:http";
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
});
