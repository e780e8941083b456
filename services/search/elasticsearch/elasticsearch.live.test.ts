import { randomUUID } from "node:crypto";
import { Client } from "@elastic/elasticsearch";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChunkRecord, SearchBackend, SearchQuery, SearchScope } from "../backend.js";
import { createElasticsearchBackend } from "./elasticsearch-backend.js";

/**
 * Against a real Elasticsearch (8.x or 9.x, Basic licence is enough): runs only when ELASTICSEARCH_URL is set, e.g.
 * `ELASTICSEARCH_URL=http://localhost:9200 npx vitest run services/search/elasticsearch/elasticsearch.live.test.ts`.
 * Everything lives under a random prefix, removed afterwards. None can be installed on the build machine, so the
 * mock tests pin the request bodies and this one checks that Elasticsearch accepts and answers them as expected.
 */
const url = process.env.ELASTICSEARCH_URL;

describe.skipIf(!url)("Elasticsearch backend, live", () => {
  const prefix = `passerelle-test-${randomUUID().slice(0, 8)}`;
  const client = new Client({ node: url ?? "http://localhost:9200" });
  let backend: SearchBackend;

  const scopes = new Map<string, SearchScope>([
    ["fr", { id: "fr", language: "french" }],
    ["en", { id: "en", language: "english" }],
  ]);
  const chunk = (
    documentId: string,
    id: number,
    collectionId: string,
    content: string,
    embedding: number[],
    metadata = {},
  ) =>
    ({
      documentId,
      id,
      collectionId,
      content,
      metadata,
      embedding,
      createdAt: new Date("2026-01-01T00:00:00Z"),
    }) as ChunkRecord;
  const chunks = [
    chunk("doc-fr", 1, "fr", "Les élèves étudient les échantillons d'eau de la rivière.", [1, 0, 0], {
      year: 2021,
      dept: "rh",
    }),
    chunk("doc-fr", 2, "fr", "Le budget de l'année prochaine est en hausse.", [0, 1, 0], {
      year: 2019,
      dept: "finance",
    }),
    chunk("doc-en", 1, "en", "The quick brown foxes jumped over the lazy dogs.", [0.8, 0.6, 0], {
      year: 2024,
      draft: true,
    }),
  ];
  const search = (over: Partial<SearchQuery>) =>
    backend.search({
      text: "",
      collections: [...scopes.values()],
      documentIds: [],
      method: "semantic",
      limit: 10,
      offset: 0,
      rrfK: 60,
      semanticWeight: 1,
      lexicalWeight: 1,
      ...over,
    });
  const ids = async (over: Partial<SearchQuery>) =>
    (await search(over)).map((h) => `${h.chunk.documentId}:${h.chunk.id}`);

  beforeAll(async () => {
    backend = createElasticsearchBackend({ client, indexPrefix: prefix, refresh: true });
    await backend.prepare(3);
    await backend.prepare(3); // idempotent
    await backend.index(chunks, scopes);
  });

  afterAll(async () => {
    await client.indices.delete({ index: `${prefix}-*`, ignore_unavailable: true }).catch(() => undefined);
    await client.indices.deleteIndexTemplate({ name: prefix }).catch(() => undefined);
    await backend?.close();
  });

  it("finds nearest vectors, scored by cosine, above the threshold", async () => {
    const hits = await search({ vector: [1, 0, 0] });
    expect(hits.map((h) => h.chunk.documentId + h.chunk.id)).toEqual(["doc-fr1", "doc-en1", "doc-fr2"]);
    expect(hits[0]?.score).toBeCloseTo(1, 5);
    expect(hits[1]?.score).toBeCloseTo(0.8, 5);
    expect(hits[1]?.chunk).toMatchObject({ content: chunks[2]?.content, metadata: { year: 2024, draft: true } });
    expect(await ids({ vector: [1, 0, 0], scoreThreshold: 0.5 })).toEqual(["doc-fr:1", "doc-en:1"]);
    expect(await ids({ vector: [1, 0, 0], offset: 1, limit: 1 })).toEqual(["doc-en:1"]);
  });

  it("matches text with each collection's analyzer: French without accents, English stems", async () => {
    expect(await ids({ method: "lexical", text: "eleve echantillon" })).toEqual(["doc-fr:1"]);
    expect(await ids({ method: "lexical", text: "fox jumping" })).toEqual(["doc-en:1"]);
  });

  it("filters by collection, document and typed metadata", async () => {
    const v = { vector: [1, 0, 0] };
    expect(await ids({ ...v, collections: [{ id: "en", language: "english" }] })).toEqual(["doc-en:1"]);
    expect(await ids({ ...v, documentIds: ["doc-fr"] })).toEqual(["doc-fr:1", "doc-fr:2"]);
    expect(await ids({ ...v, filter: { type: "gte", key: "year", value: 2020 } })).toEqual(["doc-fr:1", "doc-en:1"]);
    expect(await ids({ ...v, filter: { type: "eq", key: "year", value: "2021" } })).toEqual([]);
    expect(await ids({ ...v, filter: { type: "ne", key: "dept", value: "rh" } })).toEqual(["doc-en:1", "doc-fr:2"]);
    const or = {
      type: "or",
      filters: [
        { type: "eq", key: "draft", value: true },
        { type: "lt", key: "year", value: 2020 },
      ],
    };
    expect(await ids({ ...v, filter: or as SearchQuery["filter"] })).toEqual(["doc-en:1", "doc-fr:2"]);
  });

  it("fuses both rankings in hybrid search", async () => {
    const hits = await search({ method: "hybrid", text: "budget", vector: [0, 1, 0], limit: 2 });
    expect(hits[0]?.chunk).toMatchObject({ documentId: "doc-fr", id: 2 });
    expect(hits[0]?.score).toBeCloseTo(2 / 61, 10);
    expect(hits).toHaveLength(2);
  });

  it("fails a write Elasticsearch rejects and leaves none of it searchable", async () => {
    const bad = [chunk("doc-bad", 1, "fr", "ok", [1, 0, 0]), chunk("doc-bad", 2 ** 31, "fr", "too far", [1, 0, 0])];
    await expect(backend.index(bad, scopes)).rejects.toMatchObject({ name: "SearchBackendError", retryable: false });
    expect(await ids({ vector: [1, 0, 0], documentIds: ["doc-bad"] })).toEqual([]);
  });

  it("removes a chunk, a document, a collection", async () => {
    await backend.remove({ documentId: "doc-fr", chunkId: 2 });
    expect(await ids({ vector: [1, 0, 0] })).toEqual(["doc-fr:1", "doc-en:1"]);
    await backend.remove({ documentId: "doc-fr" });
    expect(await ids({ vector: [1, 0, 0] })).toEqual(["doc-en:1"]);
    await backend.remove({ collectionId: "en" });
    expect(await ids({ method: "lexical", text: "fox" })).toEqual([]);
  });
});
