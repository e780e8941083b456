import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HYBRID_WINDOW } from "../../services/search/backend.js";
import { createRole, createUser, type Json, rest, type TestUser } from "../support/accounts.js";
import { testRedisUrl } from "../support/env.js";
import { grant, writeModelsFile } from "../support/governance.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { type Simulator, startSimulator } from "../upstream/simulator.js";

const EMBED = "rag-embed";
const QUERY = "rivière montagne";

/**
 * Paging through search results over REST: every page of a method must be a slice of the one ranking a single big
 * call returns. Hybrid search once fused rankings whose depth grew with the offset, so each page fused other
 * candidates: 60 chunks paged by 10 gave 60 results of 56 distinct chunks.
 */
describe("search paging", () => {
  let sim: Simulator;
  let t: TestPlatform;
  let dir: string;
  let ada: TestUser;
  let collection: string;
  const search = (body: Record<string, unknown>) =>
    rest(t, "POST", "/v1/search", { key: ada.key, body: { query: QUERY, collection_ids: [collection], ...body } });
  const key = (x: Json) => `${x.chunk.document_id}#${x.chunk.id}`;

  beforeAll(async () => {
    sim = await startSimulator({ embeddingDimensions: 16 });
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "search-paging-"));
    const models = await writeModelsFile(dir, [
      { name: EMBED, type: "text-embeddings-inference", urls: [sim.url], upstreamModel: "sim-embed" },
    ]);
    t = await startTestPlatform({
      redis: Boolean(testRedisUrl()),
      env: { PASSERELLE_MODELS_FILE: models, PASSERELLE_RAG_EMBEDDINGS_MODEL: EMBED },
    });
    const role = await createRole(t);
    await grant(t.httpUrl, t.adminKey, role.id, EMBED);
    ada = await createUser(t, { role: role.id });
    const c = await rest(t, "POST", "/v1/collections", { key: ada.key, body: { name: "paging", language: "french" } });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    collection = c.body.id;
    const d = await rest(t, "POST", "/v1/documents", { key: ada.key, body: { collection, name: "many" } });
    expect(d.status, JSON.stringify(d.body)).toBe(201);
    // 60 chunks that both rankings order differently: the query's words repeated 1 to 7 times, other words between.
    const words = ["rivière", "montagne", "forêt", "océan", "désert", "prairie", "glacier", "volcan"];
    const chunks = Array.from({ length: 60 }, (_, i) => ({
      content: `${"rivière ".repeat(1 + (i % 7))}${words[i % words.length]} numéro ${i} ${"texte ".repeat(i % 5)}`,
    }));
    const r = await rest(t, "POST", `/v1/documents/${d.body.id}/chunks`, { key: ada.key, body: { chunks } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await sim?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it.each(["hybrid", "semantic", "lexical"])("%s: pages of 10 concatenate to the single page of 60", async (method) => {
    const whole = await search({ method, limit: 60 });
    expect(whole.status, JSON.stringify(whole.body)).toBe(200);
    const reference = whole.body.data.map(key);
    expect(reference.length).toBeGreaterThan(10);
    const paged: string[] = [];
    for (let offset = 0; offset < 60; offset += 10) {
      const page = await search({ method, limit: 10, offset });
      expect(page.status, JSON.stringify(page.body)).toBe(200);
      paged.push(...page.body.data.map(key));
    }
    expect(paged).toEqual(reference);
  });

  it("refuses a hybrid page that ends beyond the fused window, naming the field", async () => {
    const last = await search({ method: "hybrid", limit: 10, offset: HYBRID_WINDOW - 10 });
    expect(last.status, JSON.stringify(last.body)).toBe(200);
    const beyond = await search({ method: "hybrid", limit: 10, offset: HYBRID_WINDOW - 9 });
    expect(beyond.status).toBe(400);
    expect(beyond.body.error).toMatchObject({ type: "invalid_request_error", param: "offset" });
    expect(beyond.body.error.message).toContain(String(HYBRID_WINDOW));
    // The other methods rank exactly to any depth: the window is hybrid's only.
    expect((await search({ method: "lexical", limit: 10, offset: HYBRID_WINDOW })).status).toBe(200);
  });
});
