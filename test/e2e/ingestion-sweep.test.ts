import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCollectionStore } from "../../services/collections/collection-store.js";
import type { ParsedDocument } from "../../services/collections/ingest/index.js";
import { createIngestion } from "../../services/collections/ingestion.js";
import { createLogger } from "../../services/platform/logging.js";
import type { SearchBackend } from "../../services/search/backend.js";
import { utf8 } from "../fixtures/documents.js";
import { createRole, createUser, type Json, rest, type TestUser } from "../support/accounts.js";
import { testRedisUrl } from "../support/env.js";
import { grant, writeModelsFile } from "../support/governance.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { type Simulator, startSimulator } from "../upstream/simulator.js";

const EMBED = "rag-embed";
const INTERRUPTED = "Ingestion was interrupted by a server restart; upload again.";
const TEN_MINUTES = 10 * 60_000;

/**
 * The stale-ingestion sweep fails the documents a dead process left queued or ingesting. A live process's documents,
 * even those only waiting in its in-memory queue, must be spared (heartbeat); and one the sweep failed anyway must not
 * be split, embedded nor billed afterwards.
 */
describe("stale-ingestion sweep", () => {
  let sim: Simulator;
  let t: TestPlatform;
  let u: TestUser;
  let pool: pg.Pool;

  beforeAll(async () => {
    sim = await startSimulator({ embeddingDimensions: 16 });
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "ingestion-sweep-"));
    const models = await writeModelsFile(dir, [
      { name: EMBED, type: "text-embeddings-inference", urls: [sim.url], upstreamModel: "sim-embed" },
    ]);
    t = await startTestPlatform({
      redis: Boolean(testRedisUrl()),
      env: {
        PASSERELLE_MODELS_FILE: models,
        PASSERELLE_RAG_EMBEDDINGS_MODEL: EMBED,
        PASSERELLE_RAG_INGEST_CONCURRENCY: "1",
      },
    });
    const role = await createRole(t);
    await grant(t.httpUrl, t.adminKey, role.id, EMBED);
    u = await createUser(t, { role: role.id });
    pool = new pg.Pool({ connectionString: t.databaseUrl });
  });
  afterAll(async () => {
    await pool?.end();
    await t?.close();
    await sim?.close();
  });

  async function upload(collection: string, name: string, text: string): Promise<Json> {
    const form = new FormData();
    form.append("collection", collection);
    form.append("file", new Blob([utf8(text)]), name);
    const res = await fetch(`${t.httpUrl}/v1/documents`, {
      method: "POST",
      headers: { authorization: `Bearer ${u.key}` },
      body: form,
    });
    expect(res.status).toBe(201);
    return (await res.json()) as Json;
  }
  const statusOf = async (id: string) => (await rest(t, "GET", `/v1/documents/${id}`, { key: u.key })).body;

  it("never embeds a queued document the sweep has failed", async () => {
    const c = await rest(t, "POST", "/v1/collections", { key: u.key, body: { name: "q" } });
    sim.setOptions({ ttftMs: 2500 });
    const d1 = await upload(c.body.id, "a.txt", "premier document");
    const d2 = await upload(c.body.id, "b.txt", "second document en attente");
    for (let i = 0; i < 50 && (await statusOf(d1.id)).status !== "embedding"; i++) await sleep(50);
    expect((await statusOf(d2.id)).status).toBe("queued");
    // What the sweep does once it judges these documents stale (cutoff now: as if ten minutes had passed).
    const swept = await createCollectionStore(pool).failInterrupted(INTERRUPTED, new Date(Date.now() + 1));
    expect(swept).toBe(2);
    let embedCalls = 0;
    const sweptAt = performance.now();
    const count = (e: { path: string; at: number }) => {
      if (e.path === "/v1/embeddings" && e.at > sweptAt) embedCalls++;
    };
    sim.events.on("request", count);
    sim.setOptions({ ttftMs: 0 });
    // d1's embeddings call (in flight before the sweep) ends after 2.5 s; d2's turn comes then.
    await sleep(4000);
    sim.events.off("request", count);
    expect(await statusOf(d2.id)).toMatchObject({ status: "failed", error: INTERRUPTED });
    expect(embedCalls).toBe(0);
  }, 30_000);

  it("spares the documents this process holds, queued or running, however long they wait", async () => {
    const store = createCollectionStore(pool);
    const collection = await store.createCollection({
      ownerId: u.id,
      name: "h",
      description: "",
      visibility: "private",
      language: "french",
      embeddingsModel: EMBED,
    });
    const doc = {
      fileName: "d.txt",
      mimeType: "text/plain",
      sizeBytes: 1,
      metadata: {},
      status: "queued",
      chunking: {},
    };
    const docs = (await store.createDocuments(u.id, collection.id, [
      { ...doc, name: "running" },
      { ...doc, name: "waiting" },
    ] as never)) as { id: string }[];
    let release = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    const ingestion = createIngestion({
      store,
      backend: { index: async () => {} } as unknown as SearchBackend,
      logger: createLogger("silent"),
      batch: 8,
      concurrency: 1,
      maxActive: 1,
      heartbeatMs: 50,
      split: async (text) => {
        await held;
        return [text];
      },
    });
    ingestion.enqueue(
      docs.map((d) => ({
        documentId: d.id,
        collectionId: collection.id,
        language: "french",
        parsed: { title: null, text: "texte", metadata: {} } as ParsedDocument,
        metadata: {},
        split: {},
        embed: async (texts: string[]) => texts.map(() => [1, 0, 0]),
      })),
    );
    try {
      await sleep(100);
      // Both have waited more than ten minutes (one splitting, one in the queue) as far as their rows tell…
      await pool.query(`update document set updated_at = now() - interval '11 minutes' where id = any($1::uuid[])`, [
        docs.map((d) => d.id),
      ]);
      await sleep(200);
      // …until the heartbeat: the sweep finds nothing stale.
      expect(await store.failInterrupted(INTERRUPTED, new Date(Date.now() - TEN_MINUTES))).toBe(0);
      release();
      for (let i = 0; i < 50 && (await store.readableDocument(u.id, docs[1]?.id as string))?.status !== "ready"; i++)
        await sleep(20);
      const rows = await pool.query(`select status from document where id = any($1::uuid[])`, [docs.map((d) => d.id)]);
      expect(rows.rows.map((r) => r.status)).toEqual(["ready", "ready"]);
    } finally {
      release();
      await ingestion.close();
    }
  }, 30_000);
});
