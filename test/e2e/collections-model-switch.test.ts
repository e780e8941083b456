import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { utf8 } from "../fixtures/documents.js";
import { createRole, createUser, type Json, rest, type TestUser } from "../support/accounts.js";
import { testRedisUrl } from "../support/env.js";
import { grant, writeModelsFile } from "../support/governance.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { type Simulator, startSimulator } from "../upstream/simulator.js";

const OLD = "rag-embed";
const NEW = "rag-embed-2";

async function upload(t: TestPlatform, key: string, collection: string, name: string, text: string) {
  const form = new FormData();
  form.append("collection", collection);
  form.append("wait", "true");
  form.append("file", new Blob([utf8(text)]), name);
  const res = await fetch(`${t.httpUrl}/v1/documents`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}` },
    body: form,
  });
  return { status: res.status, body: (await res.json()) as Json };
}

/**
 * A collection remembers the embeddings model its chunks were embedded with. After a restart with
 * PASSERELLE_RAG_EMBEDDINGS_MODEL naming another model, searching it by meaning or adding to it is refused (409) with
 * a message naming both models, instead of a semantic search answering 200 with nothing and new chunks mixing two
 * vector spaces in one collection; lexical search, which reads no vectors, still works.
 */
describe("collections after the embeddings model changed", () => {
  let sim: Simulator;
  let t: TestPlatform;
  let ada: TestUser;
  let old: { collection: string; document: string };
  const dirs: string[] = [];
  const as = (method: string, route: string, body?: unknown) => rest(t, method, route, { key: ada.key, body });

  const models = async (names: string[]) => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "model-switch-"));
    dirs.push(dir);
    const upstream: Record<string, string> = { [OLD]: "sim-embed", [NEW]: "sim-embed-2" };
    return writeModelsFile(
      dir,
      names.map((name) => ({
        name,
        type: "text-embeddings-inference" as const,
        urls: [sim.url],
        upstreamModel: upstream[name] as string,
      })),
    );
  };

  beforeAll(async () => {
    sim = await startSimulator({
      models: [
        { id: "sim-embed", maxModelLen: 8192, kind: "embeddings", dimensions: 16 },
        { id: "sim-embed-2", maxModelLen: 8192, kind: "embeddings", dimensions: 32 },
      ],
    });
    const redis = Boolean(testRedisUrl());
    const before = await startTestPlatform({
      redis,
      keepDatabase: true,
      env: { PASSERELLE_MODELS_FILE: await models([OLD]), PASSERELLE_RAG_EMBEDDINGS_MODEL: OLD },
    });
    t = before;
    const role = await createRole(t);
    await grant(t.httpUrl, t.adminKey, role.id, OLD);
    ada = await createUser(t, { role: role.id });
    const c = await as("POST", "/v1/collections", { name: "old" });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    const d = await upload(t, ada.key, c.body.id, "a.txt", "texte ancien modèle");
    expect(d.body.status).toBe("ready");
    old = { collection: c.body.id, document: d.body.id };
    const found = await as("POST", "/v1/search", { query: "texte ancien modèle", collection_ids: [old.collection] });
    expect(found.body.data).toHaveLength(1);
    await before.close();

    t = await startTestPlatform({
      redis,
      prepared: { databaseUrl: before.databaseUrl, adminKey: before.adminKey },
      env: { PASSERELLE_MODELS_FILE: await models([OLD, NEW]), PASSERELLE_RAG_EMBEDDINGS_MODEL: NEW },
    });
    await grant(t.httpUrl, t.adminKey, role.id, NEW);
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await sim?.close();
    for (const dir of dirs) await fs.rm(dir, { recursive: true, force: true });
  });

  const expectRefused = (r: { status: number; body: Json }) => {
    expect(r.status, JSON.stringify(r.body)).toBe(409);
    expect(r.body.error.type).toBe("conflict_error");
    expect(r.body.error.message).toContain(`'${OLD}'`);
    expect(r.body.error.message).toContain(`'${NEW}'`);
    expect(r.body.error.message).toContain("lexical");
  };

  it.each(["semantic", "hybrid"])("refuses a %s search of the collection, naming both models", async (method) => {
    expectRefused(
      await as("POST", "/v1/search", { query: "texte ancien modèle", collection_ids: [old.collection], method }),
    );
  });

  it("still searches it lexically", async () => {
    const r = await as("POST", "/v1/search", {
      query: "ancien",
      collection_ids: [old.collection],
      method: "lexical",
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.data.map((x: Json) => x.chunk.document_id)).toEqual([old.document]);
  });

  it("refuses new documents and chunks in it, and embeds nothing for them", async () => {
    const embeddings = () =>
      Object.entries(sim.stats.requests).reduce((n, [route, count]) => n + (route.includes("embed") ? count : 0), 0);
    const embedded = embeddings();
    expect(embedded).toBeGreaterThan(0);
    expectRefused(await upload(t, ada.key, old.collection, "b.txt", "texte nouveau"));
    expectRefused(await as("POST", "/v1/documents", { collection: old.collection, name: "empty" }));
    expectRefused(await as("POST", `/v1/documents/${old.document}/chunks`, { chunks: [{ content: "texte nouveau" }] }));
    expect(embeddings()).toBe(embedded);
    const c = await as("GET", `/v1/collections/${old.collection}`);
    expect([c.body.documents, c.body.chunks]).toEqual([1, 1]);
  });

  it("works with a collection created since, and leaves the old one out of an unscoped semantic search", async () => {
    const c = await as("POST", "/v1/collections", { name: "new" });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    const d = await upload(t, ada.key, c.body.id, "c.txt", "texte ancien modèle");
    expect(d.body.status).toBe("ready");
    const r = await as("POST", "/v1/search", { query: "texte ancien modèle" });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.data.map((x: Json) => x.chunk.document_id)).toEqual([d.body.id]);
  });
});
