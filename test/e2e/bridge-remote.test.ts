import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import Fastify, { type FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bridgePlugin } from "../../bridge/app.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";

/** The bridge run apart from the core (PASSERELLE_CORE_URL): the same plugin over a network Transport. */
describe("bridge against a remote core", () => {
  let t: TestPlatform;
  const bridges: FastifyInstance[] = [];

  async function startBridge(kind: "grpc-h2c" | "connect-h1"): Promise<string> {
    const transport =
      kind === "grpc-h2c"
        ? createGrpcTransport({ baseUrl: t.grpcUrl })
        : createConnectTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" });
    const app = Fastify();
    await app.register(bridgePlugin, { transport });
    await app.listen({ host: "127.0.0.1", port: 0 });
    bridges.push(app);
    const addr = app.server.address();
    if (!addr || typeof addr === "string") throw new Error("no address");
    return `http://127.0.0.1:${addr.port}`;
  }

  beforeAll(async () => {
    t = await startTestPlatform({ overrides: { bridgeEnabled: false } });
  });
  afterAll(async () => {
    for (const b of bridges) await b.close();
    await t?.close();
  });

  it("the core alone serves no REST routes", async () => {
    const res = await fetch(`${t.httpUrl}/v1/me`, { headers: { authorization: `Bearer ${t.adminKey}` } });
    expect(res.status).toBe(404);
  });

  for (const kind of ["grpc-h2c", "connect-h1"] as const) {
    it(`translates REST to RPC over ${kind}, with auth and errors intact`, async () => {
      const url = await startBridge(kind);
      const ok = await fetch(`${url}/v1/me`, {
        headers: { authorization: `Bearer ${t.adminKey}`, "x-request-id": "remote-1" },
      });
      expect(ok.status).toBe(200);
      expect(ok.headers.get("x-request-id")).toBe("remote-1");
      expect(await ok.json()).toMatchObject({ object: "me", email: t.adminEmail });

      const bad = await fetch(`${url}/v1/me`, { headers: { authorization: "Bearer sk-not-a-real-key-000000000000" } });
      expect(bad.status).toBe(401);
      expect(await bad.json()).toMatchObject({ error: { type: "invalid_request_error", code: "invalid_api_key" } });

      const created = await fetch(`${url}/v1/admin/organizations`, {
        method: "POST",
        headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "application/json" },
        body: JSON.stringify({ name: `org-${kind}` }),
      });
      expect(created.status).toBe(201);
      const dup = await fetch(`${url}/v1/admin/organizations`, {
        method: "POST",
        headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "application/json" },
        body: JSON.stringify({ name: `org-${kind}` }),
      });
      expect(dup.status).toBe(409);
    });
  }
});
