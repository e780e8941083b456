import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CollectionService } from "../../gen/passerelle/collections/v1/collection_service_pb.js";
import { DocumentStatus } from "../../gen/passerelle/collections/v1/resources_pb.js";
import { SearchMethod, SearchService } from "../../gen/passerelle/search/v1/search_service_pb.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { type Simulator, startSimulator } from "../upstream/simulator.js";
import { type Evaluation, evaluate } from "./metrics.js";
import { loadSotu } from "./sotu.js";
import { SOTU_QUERIES } from "./sotu-queries.js";

/**
 * Retrieval quality on a corpus nobody here wrote: the 233 State of the Union addresses, ingested through the
 * CollectionService like any upload (one document per address, the default splitter), then the 64 judged queries of
 * sotu-queries.ts through the SearchService, per method. Prints recall@10 and MRR (over documents: a search returns
 * chunks, the first chunk of a document gives its rank).
 *
 * The simulator's embeddings are deterministic but not semantic (a seeded random vector per text): the semantic and
 * hybrid figures measure the plumbing, not a model, and are printed as such. The lexical figures are real.
 */
describe("retrieval quality on the State of the Union corpus", () => {
  let sim: Simulator;
  let t: TestPlatform;
  let dir: string;
  const results = new Map<string, Evaluation>();

  beforeAll(async () => {
    sim = await startSimulator();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-sotu-"));
    const file = path.join(dir, "models.yaml");
    await fs.writeFile(
      file,
      `models:\n  - name: embed\n    type: text-embeddings-inference\n    providers:\n      - { type: vllm, url: "${sim.url}", model_name: sim-embed }\n`,
    );
    t = await startTestPlatform({
      env: {
        PASSERELLE_MODELS_FILE: file,
        PASSERELLE_RAG_EMBEDDINGS_MODEL: "embed",
        PASSERELLE_RAG_EMBEDDINGS_BATCH: "128",
        PASSERELLE_RAG_EMBEDDINGS_CONCURRENCY: "4",
      },
    });
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    await sim?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
    const rows = [...results].map(([method, e]) => ({
      method: `${method}${method.startsWith("lexical") ? "" : " (simulated embeddings: not semantic)"}`,
      "recall@10": e.recallAt10.toFixed(3),
      MRR: e.mrr.toFixed(3),
    }));
    if (rows.length) console.table(rows);
  });

  it("ingests the corpus and reports recall@10 and MRR per method", async () => {
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
    const collections = createClient(CollectionService, transport);
    const search = createClient(SearchService, transport);
    const { collection } = await collections.createCollection({ name: "sotu", language: "english" });
    const speeches = loadSotu();
    const docToSpeech = new Map<string, string>();
    for (const s of speeches) {
      const { documents } = await collections.createDocument({
        collectionId: collection?.id,
        fileName: `${s.id}.txt`,
        content: new TextEncoder().encode(s.text),
        metadata: { year: s.year, president: s.president },
        chunking: { chunkSize: 1500, chunkOverlap: 100, preset: "text" },
      });
      docToSpeech.set(documents[0]?.id as string, s.id);
    }
    for (const id of docToSpeech.keys()) {
      for await (const { document } of collections.watchDocument({ id }))
        if (document?.status === DocumentStatus.FAILED) throw new Error(`${id}: ${document.failureReason}`);
    }

    for (const [name, method] of [
      ["lexical", SearchMethod.LEXICAL],
      ["semantic", SearchMethod.SEMANTIC],
      ["hybrid", SearchMethod.HYBRID],
    ] as const) {
      const runs = [];
      for (const q of SOTU_QUERIES) {
        const res = await search.search({
          query: q.query,
          collectionIds: [collection?.id as string],
          method,
          limit: 50,
        });
        runs.push({
          queryId: q.id,
          ranked: res.results.map((r) => docToSpeech.get(r.chunk?.documentId ?? "") ?? "?"),
        });
      }
      results.set(name, evaluate(runs, SOTU_QUERIES));
      const english = SOTU_QUERIES.filter((q) => q.lang === "en");
      results.set(
        `${name}, English queries`,
        evaluate(
          runs.filter((r) => english.some((q) => q.id === r.queryId)),
          english,
        ),
      );
    }
    // A floor for the one method this corpus can judge: full text over English addresses with English queries.
    expect(results.get("lexical, English queries")?.recallAt10).toBeGreaterThan(0.55);
    expect(results.get("lexical, English queries")?.mrr).toBeGreaterThan(0.5);
  }, 600_000);
});
