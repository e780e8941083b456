import { describe, expect, it } from "vitest";
import {
  connectionError,
  errorResponse,
  mockCluster,
  type RecordedRequest,
} from "../../../test/support/es-mock-cluster.js";
import type { SearchQuery } from "../backend.js";
import { HYBRID_SEMANTIC_DEPTH, HYBRID_WINDOW } from "../backend.js";
import { createElasticsearchBackend } from "./elasticsearch-backend.js";
import { encodeNumber } from "./mapping.js";

const SOURCE = ["collection_id", "document_id", "chunk_id", "language", "content_*", "metadata", "created"];

const query = (over: Partial<SearchQuery> = {}): SearchQuery => ({
  text: "élève",
  vector: [1, 0, 0],
  collections: [
    { id: "col-fr", language: "french" },
    { id: "col-en", language: "english" },
  ],
  documentIds: ["doc-a", "doc-b"],
  filter: {
    type: "and",
    filters: [
      { type: "eq", key: "dept", value: "rh" },
      { type: "gte", key: "year", value: 2020 },
    ],
  },
  method: "semantic",
  limit: 3,
  offset: 2,
  rrfK: 60,
  semanticWeight: 1,
  lexicalWeight: 1,
  ...over,
});

/** The scope filter every request must carry, the collection terms first. */
const FILTERS = [
  { terms: { collection_id: ["col-fr", "col-en"] } },
  { terms: { document_id: ["doc-a", "doc-b"] } },
  {
    bool: {
      filter: [
        { term: { "metadata_string.dept": "rh" } },
        { range: { "metadata_number.year": { gte: encodeNumber(2020) } } },
      ],
    },
  },
];

const hit = (documentId: string, chunkId: number, score: number, language = "french") => ({
  _index: "passerelle-chunks-3",
  _id: `${documentId}:${chunkId}`,
  _score: score,
  _source: {
    collection_id: language === "french" ? "col-fr" : "col-en",
    document_id: documentId,
    chunk_id: chunkId,
    language,
    [`content_${language}`]: `texte ${documentId}/${chunkId}`,
    metadata: { dept: "rh", year: 2021 },
    created: "2026-01-02T03:04:05.000Z",
  },
});
const answer = (hits: ReturnType<typeof hit>[]) => ({
  took: 4,
  timed_out: false,
  _shards: { total: 1, successful: 1, skipped: 0, failed: 0 },
  hits: { max_score: hits[0]?._score ?? null, hits },
});
const ids = (hits: { chunk: { documentId: string; id: number } }[]) =>
  hits.map((h) => `${h.chunk.documentId}:${h.chunk.id}`);

describe("semantic search", () => {
  it("sends a filtered kNN for the page's window and returns cosine scores", async () => {
    const { client, requests, on } = mockCluster();
    on("POST", "/:index/_search", () => answer([hit("doc-a", 1, 0.95), hit("doc-b", 7, 0.8, "english")]));
    const hits = await createElasticsearchBackend({ client }).search(query({ scoreThreshold: 0.5 }));

    expect(requests).toEqual([
      {
        method: "POST",
        path: "/passerelle-chunks-3/_search",
        querystring: { ignore_unavailable: "true" },
        body: {
          from: 2,
          size: 3,
          track_total_hits: false,
          _source: SOURCE,
          knn: {
            field: "embedding",
            query_vector: [1, 0, 0],
            k: 5,
            num_candidates: 100,
            filter: { bool: { filter: FILTERS } },
            similarity: 0.5,
          },
        },
      },
    ]);
    expect(hits).toEqual([
      {
        method: "semantic",
        score: expect.closeTo(0.9, 12),
        chunk: {
          documentId: "doc-a",
          id: 1,
          collectionId: "col-fr",
          content: "texte doc-a/1",
          metadata: { dept: "rh", year: 2021 },
          createdAt: new Date("2026-01-02T03:04:05.000Z"),
        },
      },
      expect.objectContaining({ score: expect.closeTo(0.6, 12) }),
    ]);
    expect(hits[1]?.chunk).toMatchObject({ collectionId: "col-en", content: "texte doc-b/7" });
  });

  it("asks for ten candidates per result beyond the first hundred, and omits empty filters", async () => {
    const { client, requests, on } = mockCluster();
    on("POST", "/:index/_search", () => answer([]));
    const q = query({
      limit: 20,
      offset: 10,
      documentIds: [],
      filter: undefined,
      collections: [{ id: "c", language: "simple" }],
    });
    await createElasticsearchBackend({ client, indexPrefix: "px" }).search(q);
    expect(requests[0]?.path).toBe("/px-3/_search");
    expect(requests[0]?.body).toMatchObject({
      from: 10,
      size: 20,
      knn: { k: 30, num_candidates: 300, filter: { bool: { filter: [{ terms: { collection_id: ["c"] } }] } } },
    });
    expect(requests[0]?.body).not.toHaveProperty("knn.similarity");
  });

  it("refuses to run without a query vector", async () => {
    const { client, requests } = mockCluster();
    await expect(createElasticsearchBackend({ client }).search(query({ vector: undefined }))).rejects.toMatchObject({
      message: "a semantic search needs a query vector",
      retryable: false,
    });
    expect(requests).toEqual([]);
  });
});

describe("lexical search", () => {
  it("matches the text in the scopes' language fields, across every index", async () => {
    const { client, requests, on } = mockCluster();
    on("POST", "/:index/_search", () => answer([hit("doc-b", 2, 7.25, "english"), hit("doc-a", 3, 3.5)]));
    const hits = await createElasticsearchBackend({ client }).search(query({ method: "lexical", vector: undefined }));

    expect(requests).toEqual([
      {
        method: "POST",
        path: "/passerelle-chunks-*/_search",
        querystring: {},
        body: {
          from: 2,
          size: 3,
          track_total_hits: false,
          _source: SOURCE,
          query: {
            bool: {
              must: [{ multi_match: { query: "élève", fields: ["content_french", "content_english"] } }],
              filter: FILTERS,
            },
          },
        },
      },
    ]);
    expect(hits.map((h) => [h.method, h.score, h.chunk.content])).toEqual([
      ["lexical", 7.25, "texte doc-b/2"],
      ["lexical", 3.5, "texte doc-a/3"],
    ]);
  });
});

describe("hybrid search", () => {
  it("fuses the kNN top HYBRID_SEMANTIC_DEPTH and the BM25 top HYBRID_WINDOW, then pages", async () => {
    const { client, requests, on } = mockCluster();
    on("POST", "/:index/_search", (req) =>
      (req.body as { knn?: object }).knn
        ? answer([hit("a", 1, 0.99), hit("b", 1, 0.9), hit("c", 1, 0.8)])
        : answer([hit("c", 1, 12), hit("d", 1, 9)]),
    );
    const backend = createElasticsearchBackend({ client });
    const q = query({ method: "hybrid", limit: 2, offset: 1, scoreThreshold: 0.99 });
    const hits = await backend.search(q);

    const semantic = requests.find((r) => (r.body as { knn?: object }).knn);
    const lexical = requests.find((r) => (r.body as { query?: object }).query);
    expect(semantic?.body).toEqual({
      from: 0,
      size: HYBRID_SEMANTIC_DEPTH,
      track_total_hits: false,
      _source: SOURCE,
      // No similarity: the threshold is for semantic search only.
      knn: {
        field: "embedding",
        query_vector: [1, 0, 0],
        k: HYBRID_SEMANTIC_DEPTH,
        num_candidates: 10 * HYBRID_SEMANTIC_DEPTH,
        filter: { bool: { filter: FILTERS } },
      },
    });
    expect(lexical).toMatchObject({ path: "/passerelle-chunks-*/_search", body: { from: 0, size: HYBRID_WINDOW } });
    // c: 1/63 + 1/61; a: 1/61; b: 1/62 (ties with d, first seen first); d: 1/62 → page [a, b].
    expect(ids(hits)).toEqual(["a:1", "b:1"]);
    expect(hits.map((h) => h.score)).toEqual([1 / 61, 1 / 62]);
    expect(hits.every((h) => h.method === "hybrid")).toBe(true);

    requests.length = 0;
    const weighted = await backend.search({ ...q, offset: 0, limit: 4, lexicalWeight: 3 });
    // d: 3/62 beats a: 1/61 once lexical weighs three times as much.
    expect(ids(weighted)).toEqual(["c:1", "d:1", "a:1", "b:1"]);
  });

  it("asks the cluster for the same rankings whatever the page, so that pages are slices of one fusion", async () => {
    const { client, requests, on } = mockCluster();
    const knn = [hit("a", 1, 0.99), hit("b", 1, 0.9), hit("c", 1, 0.8), hit("e", 1, 0.7)];
    on("POST", "/:index/_search", (req) =>
      (req.body as { knn?: object }).knn ? answer(knn) : answer([hit("c", 1, 12), hit("d", 1, 9), hit("f", 1, 5)]),
    );
    const backend = createElasticsearchBackend({ client });
    const whole = await backend.search(query({ method: "hybrid", limit: 6, offset: 0 }));
    const bodies = (from: number) => requests.slice(from).map((r) => JSON.stringify(r.body));
    const first = bodies(0);
    const pages = [];
    for (const offset of [0, 2, 4]) {
      const seen = requests.length;
      pages.push(...(await backend.search(query({ method: "hybrid", limit: 2, offset }))));
      expect(bodies(seen)).toEqual(first);
    }
    expect(ids(pages)).toEqual(ids(whole));
    expect(new Set(ids(pages)).size).toBe(6);
  });
});

describe("authorization boundary", () => {
  const filtersOf = (r: RecordedRequest) => {
    const body = r.body as { knn?: { filter: { bool: { filter: object[] } } }; query?: { bool: { filter: object[] } } };
    return body.knn ? body.knn.filter.bool.filter : body.query?.bool.filter;
  };

  it("filters every request of every method on the readable collections", async () => {
    const { client, requests, on } = mockCluster();
    on("POST", "/:index/_search", () => answer([]));
    const backend = createElasticsearchBackend({ client });
    for (const method of ["semantic", "lexical", "hybrid"] as const)
      await backend.search(query({ method, documentIds: [], filter: undefined }));
    expect(requests).toHaveLength(4);
    for (const r of requests) expect(filtersOf(r)?.[0]).toEqual({ terms: { collection_id: ["col-fr", "col-en"] } });
  });

  it("sends nothing when no collection is readable", async () => {
    const { client, requests } = mockCluster();
    const backend = createElasticsearchBackend({ client });
    for (const method of ["semantic", "lexical", "hybrid"] as const)
      expect(await backend.search(query({ method, collections: [] }))).toEqual([]);
    expect(requests).toEqual([]);
  });
});

describe("search errors", () => {
  it("says whether to retry, and never repeats Elasticsearch's reason (it may quote the query)", async () => {
    const cases = [
      [() => errorResponse(503, "search_phase_execution_exception", "all shards failed: élève"), true, 503],
      [() => errorResponse(429, "es_rejected_execution_exception", "rejected execution of élève"), true, 429],
      [() => errorResponse(400, "parsing_exception", "unknown query [élève]"), false, 400],
      [() => connectionError(), true, undefined],
    ] as const;
    for (const [respond, retryable, status] of cases) {
      const { client, on } = mockCluster();
      on("POST", "/:index/_search", respond);
      const err: Error = await createElasticsearchBackend({ client })
        .search(query({ method: "lexical" }))
        .then(
          () => new Error("resolved"),
          (e: Error) => e,
        );
      expect(err).toMatchObject({ name: "SearchBackendError", retryable, status });
      expect(err.message).toMatch(/^Elasticsearch search failed: /);
      expect(err.message).not.toContain("élève");
      expect(err.cause).toBeDefined();
    }
  });
});
