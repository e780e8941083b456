import { describe, expect, it, vi } from "vitest";
import { connectionError, errorResponse, mockCluster } from "../../../test/support/es-mock-cluster.js";
import type { ChunkRecord, SearchScope } from "../backend.js";
import { createElasticsearchBackend } from "./elasticsearch-backend.js";
import { SearchBackendError } from "./errors.js";
import { encodeNumber } from "./mapping.js";

const HNSW = { type: "hnsw", m: 16, ef_construction: 100 };
const text = (analyzer: string) => ({ type: "text", analyzer });

const chunk = (documentId: string, id: number, over: Partial<ChunkRecord> = {}): ChunkRecord => ({
  documentId,
  id,
  collectionId: "col-fr",
  content: `Secret contenu ${documentId}/${id}`,
  metadata: {},
  embedding: [0.1, 0.2, 0.3],
  createdAt: new Date("2026-03-04T05:06:07.000Z"),
  ...over,
});
const scopes = new Map<string, SearchScope>([
  ["col-fr", { id: "col-fr", language: "french" }],
  ["col-en", { id: "col-en", language: "english" }],
]);
const bulkOk = (items: unknown[] = []) => ({ took: 3, errors: false, items });

describe("prepare", () => {
  it("puts the template, then creates the index of that embedding size", async () => {
    const { client, requests, on } = mockCluster();
    on("PUT", "/_index_template/:name", () => ({ acknowledged: true }));
    on("PUT", "/:index", () => ({ acknowledged: true, shards_acknowledged: true, index: "passerelle-chunks-384" }));
    await createElasticsearchBackend({ client }).prepare(384);

    expect(requests).toEqual([
      {
        method: "PUT",
        path: "/_index_template/passerelle-chunks",
        querystring: {},
        body: {
          index_patterns: ["passerelle-chunks-*"],
          priority: 200,
          version: 1,
          _meta: { description: "Passerelle chunks: one index per embedding size, all collections" },
          template: {
            settings: {
              analysis: {
                filter: {
                  passerelle_french_elision: {
                    type: "elision",
                    articles_case: true,
                    articles: ["l", "m", "t", "qu", "n", "s", "j", "d", "c", "jusqu", "quoiqu", "lorsqu", "puisqu"],
                  },
                  passerelle_french_stop: { type: "stop", stopwords: "_french_" },
                  passerelle_french_stemmer: { type: "stemmer", language: "light_french" },
                },
                analyzer: {
                  passerelle_french: {
                    type: "custom",
                    tokenizer: "standard",
                    filter: [
                      "passerelle_french_elision",
                      "lowercase",
                      "passerelle_french_stop",
                      "asciifolding",
                      "passerelle_french_stemmer",
                    ],
                  },
                  passerelle_simple: { type: "custom", tokenizer: "standard", filter: ["lowercase", "asciifolding"] },
                },
              },
            },
            mappings: {
              dynamic: "strict",
              properties: {
                collection_id: { type: "keyword" },
                document_id: { type: "keyword" },
                chunk_id: { type: "integer" },
                language: { type: "keyword" },
                content_simple: text("passerelle_simple"),
                content_french: text("passerelle_french"),
                content_english: text("english"),
                content_german: text("german"),
                content_italian: text("italian"),
                content_spanish: text("spanish"),
                content_portuguese: text("portuguese"),
                content_dutch: text("dutch"),
                metadata: { type: "object", enabled: false },
                metadata_string: { type: "flattened" },
                metadata_number: { type: "flattened" },
                metadata_boolean: { type: "flattened" },
                created: { type: "date" },
                embedding: { type: "dense_vector", index: true, similarity: "cosine", index_options: HNSW },
              },
            },
          },
        },
      },
      {
        method: "PUT",
        path: "/passerelle-chunks-384",
        querystring: {},
        body: {
          mappings: {
            properties: {
              embedding: { type: "dense_vector", dims: 384, index: true, similarity: "cosine", index_options: HNSW },
            },
          },
        },
      },
    ]);
  });

  it("is idempotent: an existing index is what it wanted", async () => {
    const { client, on } = mockCluster();
    on("PUT", "/_index_template/:name", () => ({ acknowledged: true }));
    on("PUT", "/:index", () =>
      errorResponse(400, "resource_already_exists_exception", "index [passerelle-chunks-3/x] already exists"),
    );
    await expect(createElasticsearchBackend({ client, indexPrefix: "p" }).prepare(3)).resolves.toBeUndefined();
  });

  it("fails on any other error, and on a nonsensical size", async () => {
    const { client, on } = mockCluster();
    on("PUT", "/_index_template/:name", () => ({ acknowledged: true }));
    on("PUT", "/:index", () =>
      errorResponse(403, "security_exception", "action [indices:admin/create] is unauthorized"),
    );
    const backend = createElasticsearchBackend({ client });
    await expect(backend.prepare(3)).rejects.toMatchObject({
      name: "SearchBackendError",
      message: "Elasticsearch create index failed: HTTP 403 (security_exception)",
      retryable: false,
      status: 403,
    });
    await expect(backend.prepare(0)).rejects.toThrow(/invalid embedding size/);
  });
});

describe("index", () => {
  it("bulk-writes each chunk under document:position, its text in its language's field", async () => {
    const { client, requests, on } = mockCluster();
    on("POST", "/_bulk", () => bulkOk());
    const en = chunk("doc-2", 1, { collectionId: "col-en", content: "Hello", metadata: { year: 2024, ok: true } });
    await createElasticsearchBackend({ client }).index(
      [chunk("doc-1", 12, { metadata: { dept: "rh" } }), chunk("doc-11", 2), en],
      scopes,
    );

    const doc = (c: ChunkRecord, language: string, typed: Record<string, unknown>) => ({
      collection_id: c.collectionId,
      document_id: c.documentId,
      chunk_id: c.id,
      language,
      [`content_${language}`]: c.content,
      metadata: c.metadata,
      metadata_string: {},
      metadata_number: {},
      metadata_boolean: {},
      ...typed,
      created: "2026-03-04T05:06:07.000Z",
      embedding: [0.1, 0.2, 0.3],
    });
    expect(requests).toEqual([
      {
        method: "POST",
        path: "/_bulk",
        querystring: { refresh: "wait_for" },
        body: [
          // "doc-1" + 12 and "doc-11" + 2 would collide as sums or concatenations without a separator.
          { index: { _index: "passerelle-chunks-3", _id: "doc-1:12" } },
          doc(chunk("doc-1", 12, { metadata: { dept: "rh" } }), "french", { metadata_string: { dept: "rh" } }),
          { index: { _index: "passerelle-chunks-3", _id: "doc-11:2" } },
          doc(chunk("doc-11", 2), "french", {}),
          { index: { _index: "passerelle-chunks-3", _id: "doc-2:1" } },
          doc(en, "english", { metadata_number: { year: encodeNumber(2024) }, metadata_boolean: { ok: "true" } }),
        ],
      },
    ]);
  });

  it("splits large writes into batches and refreshes only with the last", async () => {
    const { client, requests, on } = mockCluster();
    on("POST", "/_bulk", () => bulkOk());
    await createElasticsearchBackend({ client, bulkSize: 2, refresh: true }).index(
      [chunk("d", 1), chunk("d", 2), chunk("d", 3)],
      scopes,
    );
    expect(requests.map((r) => [r.querystring.refresh, (r.body as unknown[]).length])).toEqual([
      ["false", 4],
      ["true", 2],
    ]);
  });

  it("fails on a rejected item, naming it but not its text, and deletes what it wrote", async () => {
    const { client, requests, on } = mockCluster();
    on("POST", "/_bulk", (req) => {
      const lines = req.body as Record<string, { _id: string }>[];
      if ("delete" in (lines[0] ?? {})) return bulkOk();
      const ok = { _index: "passerelle-chunks-3", _id: "d:1", _version: 1, result: "created", status: 201 };
      const reason = "failed to parse field [created] of type [date]. Preview of field's value: 'Secret contenu'";
      const bad = {
        _index: "passerelle-chunks-3",
        _id: "d:2",
        status: 400,
        error: { type: "document_parsing_exception", reason },
      };
      return { took: 2, errors: true, items: [{ index: ok }, { index: bad }] };
    });
    const err = await createElasticsearchBackend({ client })
      .index([chunk("d", 1), chunk("d", 2)], scopes)
      .catch((e: unknown) => e);

    expect(err).toBeInstanceOf(SearchBackendError);
    expect(err).toMatchObject({
      message: "Elasticsearch bulk index failed for 1 of 2 chunks, first d:2: HTTP 400 (document_parsing_exception)",
      retryable: false,
      status: 400,
    });
    expect(requests[1]).toEqual({
      method: "POST",
      path: "/_bulk",
      querystring: { refresh: "wait_for" },
      body: [
        { delete: { _index: "passerelle-chunks-3", _id: "d:1" } },
        { delete: { _index: "passerelle-chunks-3", _id: "d:2" } },
      ],
    });
  });

  it("marks overload retryable: a 429 item, a 503 answer; a failed clean-up is logged, not thrown", async () => {
    const { client, on } = mockCluster();
    let calls = 0;
    on("POST", "/_bulk", () => {
      calls++;
      if (calls === 1) {
        const item = { _id: "d:1", status: 429, error: { type: "es_rejected_execution_exception", reason: "queue" } };
        return { took: 1, errors: true, items: [{ index: item }] };
      }
      if (calls === 2) return bulkOk();
      return errorResponse(503, "cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/2/no master]");
    });
    const logger = { warn: vi.fn() };
    const backend = createElasticsearchBackend({ client, logger });
    await expect(backend.index([chunk("d", 1)], scopes)).rejects.toMatchObject({ retryable: true, status: 429 });
    await expect(backend.index([chunk("d", 1)], scopes)).rejects.toMatchObject({
      message: "Elasticsearch bulk index failed: HTTP 503 (cluster_block_exception)",
      retryable: true,
    });
    expect(logger.warn).toHaveBeenCalledWith(
      expect.objectContaining({ documents: ["d"] }),
      "could not delete partly indexed chunks",
    );
  });

  it("refuses chunks whose collection has no scope or an unknown language, before writing anything", async () => {
    const { client, requests, on } = mockCluster();
    on("POST", "/_bulk", () => bulkOk());
    const backend = createElasticsearchBackend({ client });
    await expect(backend.index([chunk("d", 1, { collectionId: "other" })], scopes)).rejects.toThrow(
      "no scope given for collection other",
    );
    const klingon = new Map([["col-fr", { id: "col-fr", language: "klingon" }]]);
    await expect(backend.index([chunk("d", 1)], klingon)).rejects.toMatchObject({ retryable: false });
    await backend.index([], scopes);
    expect(requests).toEqual([]);
  });
});

describe("remove", () => {
  const deleted = { took: 5, timed_out: false, total: 2, deleted: 2, version_conflicts: 0, failures: [] };

  it("deletes by query across every embedding size's index", async () => {
    const { client, requests, on } = mockCluster();
    on("POST", "/:index/_delete_by_query", () => deleted);
    const backend = createElasticsearchBackend({ client });
    await backend.remove({ collectionId: "col-fr" });
    await backend.remove({ documentId: "doc-1" });
    await backend.remove({ documentId: "doc-1", chunkId: 4 });
    const querystring = { conflicts: "proceed", refresh: "true" };
    const path = "/passerelle-chunks-*/_delete_by_query";
    expect(requests).toEqual([
      { method: "POST", path, querystring, body: { query: { term: { collection_id: "col-fr" } } } },
      {
        method: "POST",
        path,
        querystring,
        body: { query: { bool: { filter: [{ term: { document_id: "doc-1" } }] } } },
      },
      {
        method: "POST",
        path,
        querystring,
        body: { query: { bool: { filter: [{ term: { document_id: "doc-1" } }, { term: { chunk_id: 4 } }] } } },
      },
    ]);
  });

  it("does not refresh when told not to, and fails (retryable) on shard failures", async () => {
    const { client, requests, on } = mockCluster();
    on("POST", "/:index/_delete_by_query", () => ({
      ...deleted,
      failures: [{ index: "passerelle-chunks-3", id: "d:1", status: 503, cause: { type: "x", reason: "y" } }],
    }));
    const backend = createElasticsearchBackend({ client, refresh: false });
    await expect(backend.remove({ collectionId: "c" })).rejects.toMatchObject({ retryable: true });
    expect(requests[0]?.querystring).toEqual({ conflicts: "proceed", refresh: "false" });
  });

  it("translates a connection failure into a retryable error", async () => {
    const { client, on } = mockCluster();
    on("POST", "/:index/_delete_by_query", () => connectionError());
    await expect(createElasticsearchBackend({ client }).remove({ collectionId: "c" })).rejects.toMatchObject({
      message: "Elasticsearch delete by query failed: ConnectionError",
      retryable: true,
      status: undefined,
    });
  });
});
