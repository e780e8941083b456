import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CollectionService } from "../../gen/passerelle/collections/v1/collection_service_pb.js";
import { DocumentStatus } from "../../gen/passerelle/collections/v1/resources_pb.js";
import { GovernanceService } from "../../gen/passerelle/governance/v1/governance_service_pb.js";
import { Role } from "../../gen/passerelle/inference/v1/chat_pb.js";
import { InferenceService } from "../../gen/passerelle/inference/v1/inference_service_pb.js";
import { SearchMethod, SearchService } from "../../gen/passerelle/search/v1/search_service_pb.js";
import { expectOpenAIError, validateOpenAI } from "../support/openai-schema.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { type Simulator, startSimulator } from "../upstream/simulator.js";

const encode = (s: string) => new TextEncoder().encode(s);

const GUIDE = `# Guide de l'eau potable

## Qualité

La qualité de l'eau du robinet en Île-de-France est contrôlée chaque jour par l'agence régionale de santé.

## Tarifs

Le prix moyen du mètre cube d'eau est de quatre euros, assainissement compris.
`;

/**
 * Collections, ingestion, search and the chat `search` tool over the RPCs (Connect protocol), on real PostgreSQL,
 * with the simulator as the embeddings and chat upstream.
 */
describe("collections over RPC", () => {
  let sim: Simulator;
  let t: TestPlatform;
  let dir: string;
  let collections: ReturnType<typeof createClient<typeof CollectionService>>;
  let search: ReturnType<typeof createClient<typeof SearchService>>;
  let inference: ReturnType<typeof createClient<typeof InferenceService>>;
  let governance: ReturnType<typeof createClient<typeof GovernanceService>>;

  beforeAll(async () => {
    sim = await startSimulator();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-rag-"));
    const file = path.join(dir, "models.yaml");
    await fs.writeFile(
      file,
      [
        "models:",
        "  - name: bge-m3",
        "    type: text-embeddings-inference",
        "    providers:",
        `      - { type: vllm, url: "${sim.url}", model_name: sim-embed }`,
        "  - name: chat",
        "    type: text-generation",
        "    providers:",
        `      - { type: vllm, url: "${sim.url}", model_name: sim-chat }`,
        "",
      ].join("\n"),
    );
    t = await startTestPlatform({
      env: {
        PASSERELLE_MODELS_FILE: file,
        PASSERELLE_RAG_EMBEDDINGS_MODEL: "bge-m3",
        PASSERELLE_RAG_MAX_FILE_BYTES: "100000",
        PASSERELLE_RAG_EMBEDDINGS_BATCH: "2",
      },
    });
    const transport = createConnectTransport({
      baseUrl: t.httpUrl,
      httpVersion: "1.1",
      interceptors: [
        (next) => (req) => {
          req.header.set("authorization", `Bearer ${t.adminKey}`);
          return next(req);
        },
      ],
    });
    collections = createClient(CollectionService, transport);
    search = createClient(SearchService, transport);
    inference = createClient(InferenceService, transport);
    governance = createClient(GovernanceService, transport);
  });
  afterAll(async () => {
    await t?.close();
    await sim?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  async function watchToEnd(id: string) {
    const seen: DocumentStatus[] = [];
    let last: Awaited<ReturnType<typeof collections.getDocument>>["document"];
    for await (const res of collections.watchDocument({ id })) {
      seen.push(res.document?.status ?? DocumentStatus.UNSPECIFIED);
      last = res.document;
    }
    return { seen, last };
  }

  it("ingests a Markdown file, streams its progress, and finds it by every method", async () => {
    const { collection } = await collections.createCollection({ name: "eau", language: "french" });
    const created = await collections.createDocument({
      collectionId: collection?.id,
      fileName: "guide.md",
      content: encode(GUIDE),
      metadata: { service: "eau", annee: 2026 },
      chunking: { chunkSize: 120 },
    });
    expect(created.documents).toHaveLength(1);
    const doc = created.documents[0];
    const { seen, last } = await watchToEnd(doc?.id as string);
    expect(last?.status).toBe(DocumentStatus.READY);
    expect(last?.progress).toBe(100);
    expect(seen.at(-1)).toBe(DocumentStatus.READY);
    // Statuses only move forward.
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
    expect(Number(last?.chunkCount)).toBeGreaterThan(1);

    const chunks = await collections.listChunks({ documentId: doc?.id });
    expect(chunks.chunks.map((c) => Number(c.id))).toEqual(chunks.chunks.map((_, i) => i + 1));
    expect(chunks.chunks[0]?.metadata).toEqual({ service: "eau", annee: 2026 });

    for (const method of [SearchMethod.SEMANTIC, SearchMethod.LEXICAL, SearchMethod.HYBRID]) {
      const res = await search.search({
        query: "prix du mètre cube",
        collectionIds: [collection?.id as string],
        method,
      });
      expect(res.results.length, SearchMethod[method]).toBeGreaterThan(0);
      expect(res.results[0]?.documentName).toBe("guide.md");
      if (method === SearchMethod.LEXICAL) {
        expect(res.results[0]?.chunk?.content).toContain("mètre cube");
        expect(res.usage?.promptTokens).toBe(0n);
      } else expect(res.usage?.promptTokens).toBeGreaterThan(0n);
    }
    // Stemming and accents: "metres cubes" finds "mètre cube".
    const lexical = await search.search({ query: "metres cubes", method: SearchMethod.LEXICAL });
    expect(lexical.results[0]?.chunk?.content).toContain("mètre cube");

    const coll = await collections.getCollection({ id: collection?.id });
    expect(Number(coll.collection?.documentCount)).toBe(1);
    expect(coll.collection?.chunkCount).toBe(last?.chunkCount);
  });

  it("refuses a corrupt file with a clear error and creates nothing", async () => {
    const { collection } = await collections.createCollection({ name: "bad" });
    const err = await collections
      .createDocument({ collectionId: collection?.id, fileName: "x.pdf", content: encode("%PDF-1.7 garbage") })
      .catch((e) => ConnectError.from(e));
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    const tooBig = await collections
      .createDocument({ collectionId: collection?.id, fileName: "big.txt", content: new Uint8Array(100_001).fill(97) })
      .catch((e) => ConnectError.from(e));
    expect((tooBig as ConnectError).code).toBe(Code.InvalidArgument);
    expect((tooBig as ConnectError).rawMessage).toMatch(/100000 bytes/);
    const docs = await collections.listDocuments({ collectionId: collection?.id });
    expect(docs.documents).toHaveLength(0);
  });

  it("marks a document failed when embedding fails, and leaves nothing of it searchable", async () => {
    const { collection } = await collections.createCollection({ name: "échec" });
    sim.setOptions({ failureRate: 1, failureStatus: 400 });
    try {
      const { documents } = await collections.createDocument({
        collectionId: collection?.id,
        fileName: "notes.txt",
        content: encode("Une note sur les impôts locaux. ".repeat(20)),
        chunking: { chunkSize: 100 },
      });
      const { last } = await watchToEnd(documents[0]?.id as string);
      expect(last?.status).toBe(DocumentStatus.FAILED);
      expect(last?.failureReason).toMatch(/^Embedding failed/);
      expect(Number(last?.chunkCount)).toBe(0);
    } finally {
      sim.reset();
    }
    const res = await search.search({
      query: "impôts locaux",
      collectionIds: [collection?.id as string],
      method: SearchMethod.LEXICAL,
    });
    expect(res.results).toHaveLength(0);
  });

  it("appends chunks by hand to an empty document, numbered in order", async () => {
    const { collection } = await collections.createCollection({ name: "manuel" });
    const { documents } = await collections.createDocument({ collectionId: collection?.id, name: "faq" });
    expect(documents[0]?.status).toBe(DocumentStatus.READY);
    const first = await collections.createChunks({
      documentId: documents[0]?.id,
      chunks: [{ content: "Le guichet ouvre à neuf heures." }, { content: "Il ferme à dix-sept heures." }],
    });
    const second = await collections.createChunks({
      documentId: documents[0]?.id,
      chunks: [{ content: "Fermé le dimanche.", metadata: { jour: "dimanche" } }],
    });
    expect([...first.chunks, ...second.chunks].map((c) => Number(c.id))).toEqual([1, 2, 3]);
    await collections.deleteChunk({ documentId: documents[0]?.id, chunkId: 2n });
    const doc = await collections.getDocument({ id: documents[0]?.id });
    expect(Number(doc.document?.chunkCount)).toBe(2);
    const err = await collections
      .getChunk({ documentId: documents[0]?.id, chunkId: 2n })
      .catch((e) => ConnectError.from(e));
    expect((err as ConnectError).code).toBe(Code.NotFound);
  });

  it("answers a chat with the search tool: retrieved chunks reach the model, results come back", async () => {
    const { collection } = await collections.createCollection({ name: "chat-rag" });
    const { documents } = await collections.createDocument({ collectionId: collection?.id, name: "tarifs" });
    await collections.createChunks({
      documentId: documents[0]?.id,
      chunks: [{ content: "Le tarif social de l'eau est réservé aux foyers modestes." }],
    });
    const res = await inference.createChatCompletion({
      params: {
        model: "chat",
        messages: [{ role: Role.USER, content: { case: "text", value: "Qui a droit au tarif social ?" } }],
        tools: [
          {
            type: "search",
            search: {
              request: { collectionIds: [collection?.id as string], method: SearchMethod.LEXICAL, limit: 3 },
              template: "Q: {prompt}\nDOCS:\n{chunks}",
            },
          },
        ],
      },
    });
    expect(res.completion?.searchResults).toHaveLength(1);
    expect(res.completion?.searchResults[0]?.chunk?.content).toContain("tarif social");
    const sent = sim.stats.lastRequest["/v1/chat/completions"] as { messages: { content: string }[]; tools?: unknown };
    expect(sent.tools).toBeUndefined();
    expect(sent.messages.at(-1)?.content).toBe(
      "Q: Qui a droit au tarif social ?\nDOCS:\nLe tarif social de l'eau est réservé aux foyers modestes.",
    );

    // Streamed: the results arrive in the final chunk.
    const chunks = [];
    for await (const r of inference.streamChatCompletion({
      params: {
        model: "chat",
        messages: [{ role: Role.USER, content: { case: "text", value: "tarif social" } }],
        tools: [{ type: "search", search: { request: { method: SearchMethod.LEXICAL } } }],
      },
    }))
      chunks.push(r.chunk);
    expect(chunks.at(-1)?.searchResults.length).toBeGreaterThan(0);
    expect(chunks.slice(0, -1).every((c) => c?.searchResults.length === 0)).toBe(true);
  });

  it("runs the search tool of a REST chat request, in OpenAI's shapes plus search_results", async () => {
    const { collection } = await collections.createCollection({ name: "rest-rag" });
    const { documents } = await collections.createDocument({ collectionId: collection?.id, name: "horaires" });
    await collections.createChunks({
      documentId: documents[0]?.id,
      chunks: [{ content: "La mairie ouvre le samedi matin.", metadata: { site: "centre" } }],
    });
    const post = (body: unknown) =>
      fetch(`${t.httpUrl}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const tool = {
      type: "search",
      collections: [collection?.id],
      method: "lexical",
      metadata_filters: { type: "eq", key: "site", value: "centre" },
      rff_k: 30,
    };
    const res = await post({ model: "chat", messages: [{ role: "user", content: "mairie samedi" }], tools: [tool] });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { search_results: unknown[] };
    validateOpenAI("CreateChatCompletionResponse", body);
    expect(body.search_results).toHaveLength(1);
    expect(body.search_results[0]).toMatchObject({
      method: "lexical",
      chunk: { object: "chunk", id: 1, content: "La mairie ouvre le samedi matin.", metadata: { site: "centre" } },
    });

    const streamed = await post({
      model: "chat",
      messages: [{ role: "user", content: "mairie samedi" }],
      tools: [tool],
      stream: true,
      stream_options: { include_usage: true },
    });
    const events = (await streamed.text())
      .split("\n\n")
      .filter((e) => e.startsWith("data: "))
      .map((e) => e.slice(6));
    expect(events.at(-1)).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    for (const c of chunks) validateOpenAI("CreateChatCompletionStreamResponse", c);
    const final = chunks.at(-1);
    expect(final.choices).toEqual([]);
    expect(final.usage.prompt_tokens).toBeGreaterThan(0);
    expect(final.search_results).toHaveLength(1);

    // A malformed tool is the caller's error, named by its path.
    const bad = await post({
      model: "chat",
      messages: [{ role: "user", content: "x" }],
      tools: [{ type: "search", method: "fuzzy" }],
    });
    const err = await expectOpenAIError(bad, 400, "invalid_request_error");
    expect(err.error.param).toBe("tools[0].method");
    const unknownCollection = await post({
      model: "chat",
      messages: [{ role: "user", content: "x" }],
      tools: [{ type: "search", collection_ids: ["0190e0e0-0000-7000-8000-000000000000"] }],
    });
    await expectOpenAIError(unknownCollection, 404, "invalid_request_error");
  });

  it("records the embeddings of ingestion and search under their own endpoints", async () => {
    // Usage records are written off the request path (journal, then batches): wait for them.
    let endpoints = new Set<string>();
    for (let i = 0; i < 100 && !(endpoints.has("documents") && endpoints.has("search")); i++) {
      const usage = await governance.listMyUsage({ pageSize: 100 });
      endpoints = new Set(usage.usageRecords.map((r) => r.endpoint));
      if (!(endpoints.has("documents") && endpoints.has("search"))) await new Promise((r) => setTimeout(r, 50));
    }
    expect(endpoints).toContain("documents");
    expect(endpoints).toContain("search");
  });
});
