import { createContextValues, type HandlerContext } from "@connectrpc/connect";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCollectionService } from "../../services/collections/collection-service.js";
import { type CollectionStore, createCollectionStore } from "../../services/collections/collection-store.js";
import type { Ingestion } from "../../services/collections/ingestion.js";
import { kPrincipal } from "../../services/platform/context.js";
import type { SearchBackend } from "../../services/search/backend.js";
import { createElasticsearchBackend } from "../../services/search/elasticsearch/elasticsearch-backend.js";
import { createPostgresSearchBackend, insertChunks } from "../../services/search/postgres/index.js";
import { createRole, createUser } from "../support/accounts.js";
import { errorResponse, mockCluster } from "../support/es-mock-cluster.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { TEST_PRINCIPAL } from "../support/principal.js";

/**
 * Deletes make the chunks unsearchable before the rows' deletion commits: with Elasticsearch, a failed purge leaves
 * the document (or chunk, or collection) in place, so that the client's retry finds it and finishes the purge.
 */
describe("deleting documents, chunks and collections", () => {
  let t: TestPlatform;
  let pool: pg.Pool;
  let store: CollectionStore;
  let ownerId: string;

  beforeAll(async () => {
    t = await startTestPlatform();
    pool = new pg.Pool({ connectionString: t.databaseUrl });
    store = createCollectionStore(pool);
    ownerId = (await createUser(t, { role: (await createRole(t)).id })).id;
  });
  afterAll(async () => {
    await pool?.end();
    await t?.close();
  });

  /** A collection holding one ready document of `chunks` chunks. */
  async function seed(chunks: number) {
    const c = await store.createCollection({
      ownerId,
      name: "c",
      description: "",
      visibility: "private",
      language: "french",
      embeddingsModel: "m",
    });
    const [d] = (await store.createDocuments(ownerId, c.id, [
      {
        name: "d",
        fileName: "d.txt",
        mimeType: "text/plain",
        sizeBytes: 1,
        metadata: {},
        status: "queued",
        chunking: {},
      },
    ])) as { id: string }[];
    const documentId = (d as { id: string }).id;
    await store.commitChunks(documentId, chunks, ["queued"], async (client, first) => {
      await insertChunks(
        client,
        Array.from({ length: chunks }, (_, i) => ({
          documentId,
          id: first + i,
          collectionId: c.id,
          content: `morceau ${i}`,
          metadata: {},
          embedding: [1, 0, 0],
          createdAt: new Date(),
        })),
        "french",
      );
    });
    return { collectionId: c.id, documentId };
  }

  function serviceOn(backend: SearchBackend) {
    const ingestion = { announce() {} } as unknown as Ingestion;
    return createCollectionService({
      store,
      backend,
      ingestion,
      parser: {} as never,
      embed: async () => [],
      embeddingsModel: "m",
      maxFileBytes: 1 << 20,
    });
  }

  const ctx = () => {
    const values = createContextValues();
    values.set(kPrincipal, { ...TEST_PRINCIPAL, userId: ownerId });
    return { values, signal: new AbortController().signal } as unknown as HandlerContext;
  };
  const count = async (sql: string, id: string) => Number((await pool.query(sql, [id])).rows[0].n);

  /** An Elasticsearch whose first delete by query fails, then succeeds. */
  function flakyElasticsearch() {
    const { client, requests, on } = mockCluster();
    let calls = 0;
    on("POST", "/:index/_delete_by_query", () =>
      ++calls === 1
        ? errorResponse(503, "unavailable_shards_exception", "primary shard is not active")
        : { took: 1, timed_out: false, total: 1, deleted: 1, version_conflicts: 0, failures: [] },
    );
    return { backend: createElasticsearchBackend({ client }), requests };
  }

  it("keeps a document whose Elasticsearch purge failed, and purges it on retry", async () => {
    const { collectionId, documentId } = await seed(2);
    const { backend, requests } = flakyElasticsearch();
    const svc = serviceOn(backend);
    await expect(svc.deleteDocument({ id: documentId } as never, ctx())).rejects.toThrow();
    expect(await count("select count(*) as n from document where id = $1", documentId)).toBe(1);
    expect(await count("select count(*) as n from chunk where document_id = $1", documentId)).toBe(2);
    expect(await count("select chunk_count as n from collection where id = $1", collectionId)).toBe(2);
    await svc.deleteDocument({ id: documentId } as never, ctx());
    expect(await count("select count(*) as n from document where id = $1", documentId)).toBe(0);
    expect(await count("select chunk_count as n from collection where id = $1", collectionId)).toBe(0);
    expect(requests.map((r) => r.body)).toEqual([
      { query: { bool: { filter: [{ term: { document_id: documentId } }] } } },
      { query: { bool: { filter: [{ term: { document_id: documentId } }] } } },
    ]);
  });

  it("keeps a chunk whose Elasticsearch purge failed, and purges it on retry", async () => {
    const { collectionId, documentId } = await seed(2);
    const { backend, requests } = flakyElasticsearch();
    const svc = serviceOn(backend);
    await expect(svc.deleteChunk({ documentId, chunkId: 2 } as never, ctx())).rejects.toThrow();
    expect(await count("select count(*) as n from chunk where document_id = $1", documentId)).toBe(2);
    await svc.deleteChunk({ documentId, chunkId: 2 } as never, ctx());
    expect(await count("select count(*) as n from chunk where document_id = $1", documentId)).toBe(1);
    expect(await count("select chunk_count as n from document where id = $1", documentId)).toBe(1);
    expect(await count("select chunk_count as n from collection where id = $1", collectionId)).toBe(1);
    expect(requests).toHaveLength(2);
  });

  it("keeps a collection whose Elasticsearch purge failed, and purges it on retry", async () => {
    const { collectionId } = await seed(1);
    const { backend, requests } = flakyElasticsearch();
    const svc = serviceOn(backend);
    await expect(svc.deleteCollection({ id: collectionId } as never, ctx())).rejects.toThrow();
    expect(await count("select count(*) as n from collection where id = $1", collectionId)).toBe(1);
    await svc.deleteCollection({ id: collectionId } as never, ctx());
    expect(await count("select count(*) as n from collection where id = $1", collectionId)).toBe(0);
    expect(await count("select count(*) as n from chunk where collection_id = $1", collectionId)).toBe(0);
    expect(requests).toHaveLength(2);
  });

  it("deletes in one transaction with the PostgreSQL backend, counts kept", async () => {
    const svc = serviceOn(createPostgresSearchBackend({ pool }));
    const { collectionId, documentId } = await seed(3);
    await svc.deleteChunk({ documentId, chunkId: 1 } as never, ctx());
    expect(await count("select count(*) as n from chunk where document_id = $1", documentId)).toBe(2);
    expect(await count("select chunk_count as n from collection where id = $1", collectionId)).toBe(2);
    await svc.deleteDocument({ id: documentId } as never, ctx());
    expect(await count("select count(*) as n from chunk where document_id = $1", documentId)).toBe(0);
    expect(await count("select chunk_count as n from collection where id = $1", collectionId)).toBe(0);
    await svc.deleteCollection({ id: collectionId } as never, ctx());
    expect(await count("select count(*) as n from collection where id = $1", collectionId)).toBe(0);
  });
});
