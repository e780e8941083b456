import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, type Reply, writeModelsFile } from "../support/governance.js";
import { validateOpenAI } from "../support/openai-schema.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { type Simulator, startSimulator } from "../upstream/simulator.js";

/** U+0000 inside a string: valid JSON, but no PostgreSQL text column or query can take it. */
const NUL = "a\u0000b";

/**
 * A NUL character in any text the platform stores, compares or searches — names, descriptions, chunk contents,
 * search queries, metadata filters, list filters, model names — is the caller's bad input: 400 in OpenAI's error
 * shape (it was a 500 "server_error" from PostgreSQL), and nothing is written.
 */
describe("text with a NUL character", () => {
  let sim: Simulator;
  let t: TestPlatform;
  let dir: string;
  let collection: string;
  let document: string;
  const send = (method: string, route: string, body?: unknown) =>
    call(t.httpUrl, method, route, { key: t.adminKey, body });

  beforeAll(async () => {
    sim = await startSimulator({ embeddingDimensions: 16 });
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-nul-"));
    const models = await writeModelsFile(dir, [
      { name: "nul-embed", type: "text-embeddings-inference", urls: [sim.url], upstreamModel: "sim-embed" },
    ]);
    t = await startTestPlatform({
      env: { PASSERELLE_MODELS_FILE: models, PASSERELLE_RAG_EMBEDDINGS_MODEL: "nul-embed" },
    });
    const c = await send("POST", "/v1/collections", { name: "kept", description: "kept" });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    collection = c.body.id;
    const d = await send("POST", "/v1/documents", { collection, name: "doc" });
    expect(d.status, JSON.stringify(d.body)).toBe(201);
    document = d.body.id;
    const chunks = await send("POST", `/v1/documents/${document}/chunks`, { chunks: [{ content: "rivière" }] });
    expect(chunks.status, JSON.stringify(chunks.body)).toBe(201);
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await sim?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  function expectBadInput(res: Reply, what: string) {
    expect(res.status, `${what}: ${JSON.stringify(res.body)}`).toBe(400);
    validateOpenAI("ErrorResponse", res.body);
    expect(res.body.error.type, what).toBe("invalid_request_error");
  }

  it("is refused in what would be written, and nothing is", async () => {
    const writes: [string, string, unknown][] = [
      ["POST", "/v1/collections", { name: NUL }],
      ["POST", "/v1/collections", { name: "x", description: NUL }],
      ["PATCH", `/v1/collections/${collection}`, { name: NUL }],
      ["POST", "/v1/documents", { collection, name: NUL }],
      ["POST", `/v1/documents/${document}/chunks`, { chunks: [{ content: NUL }] }],
      ["POST", `/v1/documents/${document}/chunks`, { chunks: [{ content: "x", metadata: { k: NUL } }] }],
    ];
    for (const [method, route, body] of writes) expectBadInput(await send(method, route, body), `${method} ${route}`);
    const form = new FormData();
    form.append("file", new Blob(["hello"]), `a${NUL}.txt`);
    form.append("collection", collection);
    const upload = await fetch(`${t.httpUrl}/v1/documents`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.adminKey}` },
      body: form,
    });
    expectBadInput({ status: upload.status, body: await upload.json(), headers: upload.headers }, "upload");

    const collections = await send("GET", "/v1/collections");
    expect(collections.body.data.map((c: { name: string }) => c.name)).toEqual(["kept"]);
    const c = await send("GET", `/v1/collections/${collection}`);
    expect(c.body).toMatchObject({ name: "kept", description: "kept" });
    const documents = await send("GET", `/v1/documents?collection=${collection}`);
    expect(documents.body.data.map((d: { name: string }) => d.name)).toEqual(["doc"]);
    const chunks = await send("GET", `/v1/documents/${document}/chunks`);
    expect(chunks.body.data.map((c: { content: string }) => c.content)).toEqual(["rivière"]);
  });

  it("is refused in searches, metadata filters and list filters", async () => {
    const embedded = () => sim.stats.requests["/v1/embeddings"] ?? 0;
    const before = embedded();
    for (const method of ["lexical", "hybrid"]) {
      expectBadInput(await send("POST", "/v1/search", { query: NUL, collections: [collection], method }), method);
    }
    for (const filter of [
      { key: "k", value: NUL, type: "eq" },
      { key: NUL, value: "v", type: "eq" },
    ]) {
      for (const method of ["lexical", "semantic", "hybrid"]) {
        const res = await send("POST", "/v1/search", {
          query: "rivière",
          collections: [collection],
          method,
          metadata_filters: filter,
        });
        expectBadInput(res, `${method} filter ${JSON.stringify(filter)}`);
      }
    }
    // Refused before the query was embedded: nothing was billed upstream.
    expect(embedded()).toBe(before);
    // Meaning alone compares vectors, not text: the query only goes to the embeddings model, which takes it.
    const semantic = await send("POST", "/v1/search", { query: NUL, collections: [collection], method: "semantic" });
    expect(semantic.status, JSON.stringify(semantic.body)).toBe(200);
    for (const route of [
      "/v1/collections?name=",
      "/v1/me/usage?model=",
      "/v1/me/usage/daily?model=",
      "/v1/admin/usage?model=",
      "/v1/admin/users?email=",
      "/v1/admin/roles?name=",
      "/v1/admin/organizations?name=",
      "/v1/admin/models?name=",
    ]) {
      expectBadInput(await send("GET", `${route}${encodeURIComponent(NUL)}`), route);
    }
  });

  it("names no model: 404 like any unknown model", async () => {
    for (const route of ["/v1/chat/completions", "/v1/embeddings"]) {
      const res = await send("POST", route, { model: NUL, input: "x", messages: [{ role: "user", content: "x" }] });
      expect(res.status, JSON.stringify(res.body)).toBe(404);
      validateOpenAI("ErrorResponse", res.body);
    }
    expect((await send("GET", `/v1/models/${encodeURIComponent(NUL)}`)).status).toBe(404);
  });
});
