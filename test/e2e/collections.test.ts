// Over 400 lines on purpose: one platform (seconds to start) and one collection carried through the whole REST flow
// of collections, documents, chunks and search, then the table of bad uploads against it.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  makeCorruptDocx,
  makeCorruptPdf,
  makeDocx,
  makeHtml,
  makeJsonDocuments,
  makePdf,
  makePng,
  utf8,
} from "../fixtures/documents.js";
import { createRole, createUser, type Json, rest, type TestUser } from "../support/accounts.js";
import { testRedisUrl } from "../support/env.js";
import { grant, writeModelsFile } from "../support/governance.js";
import { expectOpenAIError } from "../support/openai-schema.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { type Simulator, startSimulator } from "../upstream/simulator.js";

const EMBED = "rag-embed";
/** The upload limit in this test. */
const CORE_MAX_FILE_BYTES = 256 * 1024;

interface UploadFile {
  name: string;
  data: Uint8Array;
  type?: string;
}

/** `POST /v1/documents` as multipart/form-data: text fields as given, the file as the `file` part. */
async function upload(
  t: TestPlatform,
  key: string,
  fields: Record<string, string | string[]>,
  file?: UploadFile,
): Promise<{ status: number; body: Json; res: Response; text: string }> {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields))
    for (const v of Array.isArray(value) ? value : [value]) form.append(name, v);
  if (file) form.append("file", new Blob([file.data], { type: file.type ?? "application/octet-stream" }), file.name);
  const res = await fetch(`${t.httpUrl}/v1/documents`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}` },
    body: form,
  });
  const text = await res.text();
  let body: Json = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: the assertion shows the text
  }
  return { status: res.status, body, res: new Response(text, { status: res.status, headers: res.headers }), text };
}

/** A REST error, validated against OpenAI's ErrorResponse schema, with its `code` and `param` when given. */
async function expectError(
  r: { res: Response },
  status: number,
  type: string,
  want: { code?: string; param?: string | null } = {},
) {
  const body = await expectOpenAIError(r.res.clone(), status, type);
  if (want.code !== undefined) expect(body.error.code, JSON.stringify(body)).toBe(want.code);
  if (want.param !== undefined) expect(body.error.param, JSON.stringify(body)).toBe(want.param);
  return body;
}

/** `rest()`'s answer as a Response, for the OpenAI error-schema helper. */
const asResponse = (r: { status: number; body: unknown; headers: Headers }) =>
  new Response(JSON.stringify(r.body), { status: r.status, headers: r.headers });

describe("collections, documents, chunks and search over REST", () => {
  let sim: Simulator;
  let t: TestPlatform;
  let dir: string;
  let ada: TestUser;
  let collectionId: string;
  const docs: Record<string, Json> = {};

  const call = (method: string, route: string, body?: unknown) => rest(t, method, route, { key: ada.key, body });
  const ok = async (method: string, route: string, body?: unknown, status = 200) => {
    const r = await call(method, route, body);
    expect(r.status, `${method} ${route}: ${JSON.stringify(r.body)}`).toBe(status);
    return r.body as Json;
  };
  /** Every document of the collection (ids), to prove a refusal created none. */
  const documentIds = async () =>
    ((await ok("GET", `/v1/documents?collection=${collectionId}&limit=100`)).data as Json[]).map((d) => d.id).sort();

  beforeAll(async () => {
    sim = await startSimulator();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-collections-"));
    const models = await writeModelsFile(dir, [
      {
        name: EMBED,
        type: "text-embeddings-inference",
        urls: [sim.url],
        upstreamModel: "sim-embed",
        costs: { prompt_tokens: 2, completion_tokens: 0 },
      },
    ]);
    t = await startTestPlatform({
      redis: Boolean(testRedisUrl()),
      env: {
        PASSERELLE_MODELS_FILE: models,
        PASSERELLE_RAG_EMBEDDINGS_MODEL: EMBED,
        PASSERELLE_RAG_MAX_FILE_BYTES: String(CORE_MAX_FILE_BYTES),
      },
    });
    const role = await createRole(t);
    await grant(t.httpUrl, t.adminKey, role.id, EMBED);
    ada = await createUser(t, { role: role.id });
  });
  afterAll(async () => {
    await t?.close();
    await sim?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it("creates, reads, lists and renames a collection", async () => {
    const created = await ok(
      "POST",
      "/v1/collections",
      { name: "Guides", description: "Guides pratiques", language: "french" },
      201,
    );
    expect(created).toEqual({
      object: "collection",
      id: expect.any(String),
      name: "Guides",
      description: "Guides pratiques",
      visibility: "private",
      owner: ada.id,
      language: "french",
      documents: 0,
      chunks: 0,
      created: expect.any(Number),
      updated: expect.any(Number),
    });
    expect(Math.abs(created.created - Date.now() / 1000)).toBeLessThan(60);
    collectionId = created.id;
    expect(await ok("GET", `/v1/collections/${collectionId}`)).toEqual(created);

    const other = await ok("POST", "/v1/collections", { name: "Brouillons" }, 201);
    const list = await ok("GET", "/v1/collections?limit=1");
    expect(list).toMatchObject({ object: "list", first_id: other.id, last_id: other.id, has_more: true });
    const next = await ok("GET", `/v1/collections?limit=1&after=${list.last_id}`);
    expect(next).toMatchObject({ data: [{ id: collectionId }], has_more: false });
    expect((await ok("GET", "/v1/collections?name=brouil")).data.map((c: Json) => c.id)).toEqual([other.id]);
    expect((await ok("GET", "/v1/collections?visibility=public")).data).toEqual([]);

    const renamed = await ok("PATCH", `/v1/collections/${other.id}`, { name: "Archives", description: "" });
    expect(renamed).toMatchObject({ name: "Archives", description: "", visibility: "private" });
    expect(await ok("PATCH", `/v1/collections/${other.id}`, {})).toMatchObject({ name: "Archives" });
    expect(await ok("DELETE", `/v1/collections/${other.id}`)).toEqual({
      id: other.id,
      object: "collection.deleted",
      deleted: true,
    });
    await expectOpenAIError(asResponse(await call("GET", `/v1/collections/${other.id}`)), 404, "invalid_request_error");
  });

  it("ingests Markdown with wait=true: ready, chunked with the options given, metadata on every chunk", async () => {
    const markdown = [
      "# Guide du compost",
      "Le compost transforme les épluchures en terreau fertile.",
      "## Matériel",
      "Un bac aéré, une fourche et des déchets verts suffisent.",
      "## Entretien",
      "Retournez le tas chaque semaine pour l'aérer.",
    ].join("\n\n");
    const r = await upload(
      t,
      ada.key,
      {
        collection: collectionId,
        metadata: JSON.stringify({ lang: "fr", topic: "jardin", year: 2024 }),
        chunk_size: "80",
        chunk_overlap: "0",
        wait: "true",
      },
      { name: "compost.md", data: utf8(markdown), type: "text/markdown" },
    );
    expect(r.status, r.text).toBe(201);
    expect(r.body).toMatchObject({
      object: "document",
      collection_id: collectionId,
      name: "compost.md",
      file_name: "compost.md",
      mime_type: "text/markdown",
      bytes: utf8(markdown).length,
      metadata: { lang: "fr", topic: "jardin", year: 2024 },
      status: "ready",
      progress: 100,
      error: null,
    });
    expect(r.body.chunks).toBeGreaterThan(1);
    docs.markdown = r.body;

    const chunks = await ok("GET", `/v1/documents/${r.body.id}/chunks?limit=100`);
    expect(chunks.data).toHaveLength(r.body.chunks);
    expect(chunks.data.map((c: Json) => c.id)).toEqual(chunks.data.map((_: Json, i: number) => i + 1));
    for (const c of chunks.data) {
      expect(c).toMatchObject({ object: "chunk", document_id: r.body.id, collection_id: collectionId });
      expect(c.content.length).toBeLessThanOrEqual(80);
      expect(c.metadata).toMatchObject({ lang: "fr", topic: "jardin", year: 2024 });
    }
    expect(chunks.data.map((c: Json) => c.content).join(" ")).toContain("Retournez le tas");
  });

  it("ingests HTML, a JSON array (one document per item), PDF and DOCX with wait=true", async () => {
    const html = await upload(
      t,
      ada.key,
      { collection_id: collectionId, name: "Page ruches", wait: "true" },
      {
        name: "ruches.html",
        type: "text/html",
        data: makeHtml({
          title: "Les ruches",
          heading: "Apiculture",
          paragraphs: ["Les abeilles butinent le trèfle au printemps.", "La ruche Dadant est la plus répandue."],
          boilerplate: true,
        }),
      },
    );
    expect(html.status, html.text).toBe(201);
    expect(html.body).toMatchObject({
      object: "document",
      name: "Page ruches",
      mime_type: "text/html",
      status: "ready",
    });
    const htmlChunks = await ok("GET", `/v1/documents/${html.body.id}/chunks`);
    const htmlText = htmlChunks.data.map((c: Json) => c.content).join("\n");
    expect(htmlText).toContain("Dadant");
    expect(htmlText).not.toContain("console.log");
    docs.html = html.body;

    const json = await upload(
      t,
      ada.key,
      { collection: collectionId, metadata: JSON.stringify({ lang: "en" }), wait: "true" },
      {
        name: "faq.json",
        type: "application/json",
        data: makeJsonDocuments([
          {
            title: "Arrosage",
            text: "Water tomatoes at the foot, early in the morning.",
            metadata: { season: "summer" },
          },
          { title: "Taille", text: "Prune the apple trees in late winter.", metadata: { season: "winter" } },
        ]),
      },
    );
    expect(json.status, json.text).toBe(201);
    expect(Object.keys(json.body).sort()).toEqual(["data", "object"]);
    expect(json.body.object).toBe("list");
    expect(json.body.data).toHaveLength(2);
    expect(json.body.data.map((d: Json) => d.name)).toEqual(["Arrosage", "Taille"]);
    for (const d of json.body.data) expect(d).toMatchObject({ status: "ready", mime_type: "application/json" });
    expect(json.body.data[0].metadata).toEqual({ lang: "en", season: "summer" });
    docs.json0 = json.body.data[0];
    docs.json1 = json.body.data[1];

    const pdf = await upload(
      t,
      ada.key,
      { collection: collectionId, wait: "true", metadata: JSON.stringify({ lang: "fr" }) },
      {
        name: "semis.pdf",
        type: "application/pdf",
        data: await makePdf(["Calendrier des semis : les radis se sèment en mars.", "Les carottes en avril."]),
      },
    );
    expect(pdf.status, pdf.text).toBe(201);
    expect(pdf.body).toMatchObject({ mime_type: "application/pdf", status: "ready", error: null });
    expect(pdf.body.chunks).toBeGreaterThan(0);
    const pdfText = (await ok("GET", `/v1/documents/${pdf.body.id}/chunks`)).data.map((c: Json) => c.content).join(" ");
    expect(pdfText).toContain("radis");
    docs.pdf = pdf.body;

    const docx = await upload(
      t,
      ada.key,
      { collection: collectionId, wait: "1", disable_chunking: "true" },
      {
        name: "haies.docx",
        data: await makeDocx([
          { heading: "Haies", text: "Une haie champêtre abrite les oiseaux et les hérissons." },
          { text: "Plantez-la en novembre." },
        ]),
      },
    );
    expect(docx.status, docx.text).toBe(201);
    expect(docx.body).toMatchObject({
      mime_type: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
      status: "ready",
      chunks: 1,
    });
    docs.docx = docx.body;
  });

  it("ingests without wait: answers at once, and the document is polled to ready", async () => {
    const text = "Les poules pondent davantage quand les jours rallongent.\n\nDonnez-leur du grain et des coquilles.";
    const r = await upload(
      t,
      ada.key,
      { collection: collectionId, separators: ["\n\n"], chunk_size: "60" },
      { name: "poules.txt", data: utf8(text), type: "text/plain" },
    );
    expect(r.status, r.text).toBe(201);
    expect(["queued", "parsing", "embedding", "ready"]).toContain(r.body.status);
    let doc = r.body;
    for (let i = 0; i < 200 && doc.status !== "ready" && doc.status !== "failed"; i++) {
      await sleep(50);
      doc = await ok("GET", `/v1/documents/${r.body.id}`);
    }
    expect(doc).toMatchObject({ status: "ready", progress: 100, mime_type: "text/plain", chunks: 2 });
    docs.text = doc;
  });

  it("lists and reads documents and chunks, page by page; the collection counts them", async () => {
    const all = await ok("GET", `/v1/documents?collection=${collectionId}&limit=100`);
    expect(all.data).toHaveLength(7);
    expect(all.data.map((d: Json) => d.id).sort()).toEqual(
      Object.values(docs)
        .map((d) => d.id)
        .sort(),
    );
    expect(all.has_more).toBe(false);
    const page = await ok("GET", `/v1/documents?collection_id=${collectionId}&limit=3`);
    expect(page.data).toHaveLength(3);
    expect(page.has_more).toBe(true);
    const rest2 = await ok("GET", `/v1/documents?collection=${collectionId}&limit=100&after=${page.last_id}`);
    expect([...page.data, ...rest2.data].map((d: Json) => d.id)).toEqual(all.data.map((d: Json) => d.id));
    expect((await ok("GET", `/v1/documents?collection=${collectionId}&status=failed`)).data).toEqual([]);
    expect((await ok("GET", "/v1/documents?status=ready&limit=100")).data).toHaveLength(7);

    const md = await ok("GET", `/v1/documents/${docs.markdown.id}`);
    expect(md).toEqual(docs.markdown);

    const first = await ok("GET", `/v1/documents/${md.id}/chunks?limit=1`);
    expect(first).toMatchObject({ object: "list", first_id: 1, last_id: 1, has_more: true });
    const second = await ok("GET", `/v1/documents/${md.id}/chunks?limit=1&after=${first.last_id}`);
    expect(second.first_id).toBe(2);
    const chunk = await ok("GET", `/v1/documents/${md.id}/chunks/2`);
    expect(chunk).toEqual(second.data[0]);
    await expectOpenAIError(
      asResponse(await call("GET", `/v1/documents/${md.id}/chunks/999`)),
      404,
      "invalid_request_error",
    );

    const collection = await ok("GET", `/v1/collections/${collectionId}`);
    const total = Object.values(docs).reduce((n, d) => n + d.chunks, 0);
    expect(collection).toMatchObject({ documents: 7, chunks: total });
  });

  it("creates an empty document (JSON body) and appends chunks to it", async () => {
    const empty = await ok(
      "POST",
      "/v1/documents",
      { collection: collectionId, name: "Notes manuelles", metadata: { source: "manual" } },
      201,
    );
    expect(empty).toMatchObject({
      object: "document",
      name: "Notes manuelles",
      file_name: null,
      mime_type: null,
      bytes: 0,
      status: "ready",
      chunks: 0,
      metadata: { source: "manual" },
    });
    const added = await ok(
      "POST",
      `/v1/documents/${empty.id}/chunks`,
      {
        chunks: [
          { content: "Le paillage garde la terre humide en été." },
          { content: "Les orties font un purin contre les pucerons.", metadata: { source: "grand-mère", page: 3 } },
        ],
      },
      201,
    );
    expect(added.object).toBe("list");
    expect(added.data.map((c: Json) => [c.id, c.metadata])).toEqual([
      [1, { source: "manual" }],
      [2, { source: "grand-mère", page: 3 }],
    ]);
    const more = await ok(
      "POST",
      `/v1/documents/${empty.id}/chunks`,
      { chunks: [{ content: "Troisième note." }] },
      201,
    );
    expect(more.data[0].id).toBe(3);
    expect(await ok("GET", `/v1/documents/${empty.id}`)).toMatchObject({ chunks: 3 });
    docs.manual = await ok("GET", `/v1/documents/${empty.id}`);

    for (const body of [{ chunks: [] }, { chunks: [{ content: "" }] }, { chunks: [{ content: "x", extra: 1 }] }, {}]) {
      await expectOpenAIError(
        asResponse(await call("POST", `/v1/documents/${empty.id}/chunks`, body)),
        400,
        "invalid_request_error",
      );
    }
    const tooMany = { chunks: Array.from({ length: 65 }, (_, i) => ({ content: `note ${i}` })) };
    await expectOpenAIError(
      asResponse(await call("POST", `/v1/documents/${empty.id}/chunks`, tooMany)),
      400,
      "invalid_request_error",
    );
    expect(await ok("GET", `/v1/documents/${empty.id}`)).toMatchObject({ chunks: 3 });
  });

  describe("search", () => {
    const search = (body: unknown) => call("POST", "/v1/search", body);

    it("finds a chunk semantically, lexically and by both, with usage for the query's embedding", async () => {
      const target = "Les orties font un purin contre les pucerons.";
      const semantic = await search({ query: target, collection_ids: [collectionId], limit: 3 });
      expect(semantic.status, JSON.stringify(semantic.body)).toBe(200);
      expect(Object.keys(semantic.body).sort()).toEqual(["data", "object", "usage"]);
      expect(semantic.body.data.length).toBeGreaterThan(0);
      expect(semantic.body.data.length).toBeLessThanOrEqual(3);
      const top = semantic.body.data[0];
      expect(top).toMatchObject({
        object: "search.result",
        method: "semantic",
        document_name: "Notes manuelles",
        chunk: { object: "chunk", id: 2, document_id: docs.manual.id, collection_id: collectionId, content: target },
      });
      expect(top.score).toBeCloseTo(1, 3);
      expect(semantic.body.usage.prompt_tokens).toBeGreaterThan(0);
      expect(semantic.body.usage.total_tokens).toBe(semantic.body.usage.prompt_tokens);
      expect(semantic.body.usage.cost).toBeGreaterThan(0);
      expect(semantic.body.usage.carbon).toEqual({
        kWh: { min: expect.any(Number), max: expect.any(Number) },
        kgCO2eq: { min: expect.any(Number), max: expect.any(Number) },
      });

      const lexical = await search({ query: "Dadant", method: "lexical" });
      expect(lexical.status, JSON.stringify(lexical.body)).toBe(200);
      expect(lexical.body.data.map((r: Json) => r.chunk.document_id)).toEqual([docs.html.id]);
      expect(lexical.body.data[0]).toMatchObject({ method: "lexical", document_name: "Page ruches" });
      expect(lexical.body.usage).toEqual({ prompt_tokens: 0, total_tokens: 0 });

      // The reference system's names: prompt, collections, rff_k.
      const hybrid = await search({ prompt: target, collections: [collectionId], method: "hybrid", rff_k: 10 });
      expect(hybrid.status, JSON.stringify(hybrid.body)).toBe(200);
      expect(hybrid.body.data[0]).toMatchObject({ method: "hybrid", chunk: { document_id: docs.manual.id, id: 2 } });
      expect(hybrid.body.usage.prompt_tokens).toBeGreaterThan(0);

      const paged = await search({ query: target, limit: 2, offset: 1 });
      expect(paged.body.data[0]?.chunk.content).not.toBe(target);
      const onlyPdf = await search({ query: target, document_ids: [docs.pdf.id] });
      expect(new Set(onlyPdf.body.data.map((r: Json) => r.chunk.document_id))).toEqual(new Set([docs.pdf.id]));
      const strict = await search({ query: "aucun rapport", score_threshold: 0.99 });
      expect(strict.body.data).toEqual([]);
    });

    it("filters on metadata with OpenAI's grammar", async () => {
      const inDocs = async (filters: unknown, method = "lexical", query = "les") => {
        const r = await search({ query, method, filters, limit: 100 });
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        return new Set(r.body.data.map((x: Json) => x.chunk.document_id));
      };
      expect(await inDocs({ type: "eq", key: "lang", value: "en" }, "semantic", "tomatoes")).toEqual(
        new Set([docs.json0.id, docs.json1.id]),
      );
      expect(await inDocs({ type: "eq", key: "topic", value: "jardin" })).toEqual(new Set([docs.markdown.id]));
      const winter = await search({
        query: "apple trees",
        metadata_filters: {
          type: "and",
          filters: [
            { type: "eq", key: "lang", value: "en" },
            { type: "in", key: "season", value: ["winter", "autumn"] },
          ],
        },
      });
      expect(winter.status, JSON.stringify(winter.body)).toBe(200);
      expect(winter.body.data.map((r: Json) => r.chunk.document_id)).toEqual([docs.json1.id]);
      expect(await inDocs({ type: "gte", key: "year", value: 2025 })).toEqual(new Set());
      expect(await inDocs({ type: "lt", key: "year", value: 2025 })).toEqual(new Set([docs.markdown.id]));
    });

    it("refuses bad searches with OpenAI-shaped 400s naming the field", async () => {
      const cases: [unknown, string | null][] = [
        [{}, "query"],
        [{ query: "" }, "query"],
        [{ query: "x", method: "fuzzy" }, "method"],
        [{ query: "x", limit: 0 }, "limit"],
        [{ query: "x", limit: 101 }, "limit"],
        [{ query: "x", filters: { type: "sw", key: "lang", value: "f" } }, "filters.type"],
        [
          { query: "x", filters: { type: "and", filters: [{ type: "startswith", key: "a", value: 1 }] } },
          "filters.filters[0].type",
        ],
        [{ query: "x", filters: { type: "eq", key: "lang" } }, "filters.value"],
        [{ query: "x", filters: { type: "in", key: "lang", value: "fr" } }, "filters.value"],
        [{ query: "x", method: "lexical", score_threshold: 0.5 }, "score_threshold"],
        [{ query: "x", prompt: "y" }, "prompt"],
        [{ query: "x", collection_ids: ["not-an-id"] }, "collection_ids"],
        [{ query: "x", unknown_field: 1 }, "unknown_field"],
      ];
      for (const [body, param] of cases) {
        const r = await search(body);
        const err = await expectOpenAIError(asResponse(r), 400, "invalid_request_error");
        expect(err.error.param, `${JSON.stringify(body)} → ${JSON.stringify(r.body)}`).toBe(param);
      }
    });
  });

  describe("bad uploads: 400 (or 413) in OpenAI's shape, nothing created", () => {
    const refused = async (
      fields: Record<string, string | string[]>,
      file: UploadFile | undefined,
      status: number,
      want: { code?: string; param?: string | null } = {},
    ) => {
      const before = await documentIds();
      const r = await upload(t, ada.key, { collection: collectionId, ...fields }, file);
      const err = await expectError(r, status, "invalid_request_error", want);
      expect(await documentIds()).toEqual(before);
      return err;
    };
    const md = (name = "note.md"): UploadFile => ({ name, data: utf8("# Titre\n\nDu texte."), type: "text/markdown" });

    it("refuses corrupt, empty and unsupported files", async () => {
      await refused({}, { name: "abime.pdf", data: await makeCorruptPdf(), type: "application/pdf" }, 400, {
        code: "corrupt_document",
        param: "file",
      });
      await refused({}, { name: "abime.docx", data: await makeCorruptDocx() }, 400, { code: "corrupt_document" });
      await refused({}, { name: "vide.md", data: new Uint8Array(0), type: "text/markdown" }, 400, {
        code: "empty_document",
        param: "file",
      });
      await refused({}, { name: "blanc.txt", data: utf8("   \n\n  "), type: "text/plain" }, 400, {
        code: "empty_document",
      });
      await refused({}, { name: "image.png", data: makePng(), type: "image/png" }, 400, {
        code: "unsupported_file_type",
      });
      // A text file that claims to be a PDF by its name.
      await refused({}, { name: "faux.pdf", data: utf8("pas un pdf"), type: "application/pdf" }, 400);
      await refused({}, { name: "table.json", data: utf8('{"not": "an array"}'), type: "application/json" }, 400, {
        code: "invalid_json_document",
      });
    });

    it("refuses a file over the limit with 413, stopped while the form is read", async () => {
      // The in-process bridge is given the core's limit (services/server.ts); the core's own check (FILE_TOO_LARGE,
      // also 413) guards RPC callers and a bridge deployed apart (test/e2e/collections-rpc.test.ts, errors.test.ts).
      const big = new Uint8Array(CORE_MAX_FILE_BYTES + 1).fill(0x61);
      const err = await refused({ wait: "true" }, { name: "grand.txt", data: big, type: "text/plain" }, 413, {
        code: "file_too_large",
        param: "file",
      });
      expect(err.error.message).toContain(String(CORE_MAX_FILE_BYTES));
    });

    it("refuses bad metadata", async () => {
      const seventeen = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, i]));
      await refused({ metadata: JSON.stringify(seventeen) }, md(), 400, { param: "metadata" });
      await refused({ metadata: JSON.stringify({ nested: { a: 1 } }) }, md(), 400);
      await refused({ metadata: JSON.stringify({ list: [1, 2] }) }, md(), 400);
      await refused({ metadata: "{not json" }, md(), 400, { param: "metadata" });
      await refused({ metadata: JSON.stringify([1, 2]) }, md(), 400, { param: "metadata" });
      await refused({ metadata: JSON.stringify({ long: "x".repeat(256) }) }, md(), 400);
      await refused({ metadata: JSON.stringify({ "bad key!": 1 }) }, md(), 400, { param: "metadata" });
      // The document's metadata and a JSON item's together are over 16 keys.
      const fifteen = Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`k${i}`, i]));
      await refused(
        { metadata: JSON.stringify(fifteen) },
        { name: "x.json", data: makeJsonDocuments([{ text: "Un texte.", metadata: { a: 1, b: 2 } }]) },
        400,
      );
    });

    it("refuses bad chunking options", async () => {
      await refused({ chunk_size: "abc" }, md(), 400, { param: "chunk_size" });
      await refused({ chunk_size: "0.5" }, md(), 400, { param: "chunk_size" });
      await refused({ chunk_size: "70000" }, md(), 400, { param: "chunk_size" });
      await refused({ chunk_size: "-1" }, md(), 400, { param: "chunk_size" });
      await refused({ chunk_size: "100", chunk_overlap: "100" }, md(), 400, { code: "invalid_chunking" });
      await refused({ chunk_size: "100", chunk_min_size: "101" }, md(), 400, { code: "invalid_chunking" });
      await refused({ separators: ["("], is_separator_regex: "true" }, md(), 400, { code: "invalid_chunking" });
      await refused({ separators: ["\n"], preset_separators: "html" }, md(), 400, { code: "invalid_chunking" });
      await refused({ preset_separators: "python" }, md(), 400, { param: "preset_separators" });
      await refused({ separators: "[not json" }, md(), 400, { param: "separators" });
      await refused({ disable_chunking: "maybe" }, md(), 400, { param: "disable_chunking" });
    });

    it("answers wait=true with the failed document when valid options leave no chunk", async () => {
      const r = await upload(t, ada.key, { collection: collectionId, wait: "true", chunk_min_size: "100" }, md());
      expect(r.status, r.text).toBe(201);
      expect(r.body).toMatchObject({ status: "failed", chunks: 0, error: expect.stringMatching(/no chunk/) });
      expect(await ok("DELETE", `/v1/documents/${r.body.id}`)).toMatchObject({ deleted: true });
    });

    it("refuses a missing or unknown collection, unknown fields and a second file", async () => {
      const before = await documentIds();
      const none = await upload(t, ada.key, {}, md());
      await expectError(none, 400, "invalid_request_error", { param: "collection" });
      const bad = await upload(t, ada.key, { collection: "not-an-id" }, md());
      await expectError(bad, 400, "invalid_request_error");
      const unknown = await upload(t, ada.key, { collection: "0190a0a0-0000-7000-8000-000000000000" }, md());
      await expectError(unknown, 404, "invalid_request_error");
      await refused({ colour: "blue" }, md(), 400, { param: "colour" });
      await refused({ collection_id: "0190a0a0-0000-7000-8000-000000000000" }, md(), 400, { param: "collection_id" });

      const form = new FormData();
      form.append("collection", collectionId);
      form.append("file", new Blob([utf8("un")]), "a.txt");
      form.append("file", new Blob([utf8("deux")]), "b.txt");
      const two = await fetch(`${t.httpUrl}/v1/documents`, {
        method: "POST",
        headers: { authorization: `Bearer ${ada.key}` },
        body: form,
      });
      await expectOpenAIError(two, 400, "invalid_request_error");
      // Forms that cannot be read: no boundary, a body cut short.
      const raw = (contentType: string, body: string) =>
        fetch(`${t.httpUrl}/v1/documents`, {
          method: "POST",
          headers: { authorization: `Bearer ${ada.key}`, "content-type": contentType },
          body,
        });
      await expectOpenAIError(await raw("multipart/form-data", "x"), 400, "invalid_request_error");
      const cut = `--b\r\ncontent-disposition: form-data; name="collection"\r\n\r\n${collectionId}\r\n--b\r\ncontent-disposition: form-data; name="file"; filename="a.md"\r\n\r\n# Titre`;
      await expectOpenAIError(await raw("multipart/form-data; boundary=b", cut), 400, "invalid_request_error");
      // JSON: no file, and the name is required then.
      const noName = await call("POST", "/v1/documents", { collection: collectionId });
      await expectOpenAIError(asResponse(noName), 400, "invalid_request_error");
      const fileInJson = await call("POST", "/v1/documents", { collection: collectionId, name: "x", file: "abc" });
      await expectOpenAIError(asResponse(fileInJson), 400, "invalid_request_error");
      expect(await documentIds()).toEqual(before);
    });
  });

  it("deletes a chunk, a document and the collection; the counts follow", async () => {
    const before = await ok("GET", `/v1/collections/${collectionId}`);
    expect(await ok("DELETE", `/v1/documents/${docs.manual.id}/chunks/2`)).toEqual({
      id: 2,
      object: "chunk.deleted",
      deleted: true,
    });
    await expectOpenAIError(
      asResponse(await call("GET", `/v1/documents/${docs.manual.id}/chunks/2`)),
      404,
      "invalid_request_error",
    );
    const remaining = await ok("GET", `/v1/documents/${docs.manual.id}/chunks`);
    expect(remaining.data.map((c: Json) => c.id)).toEqual([1, 3]);
    expect(await ok("GET", `/v1/documents/${docs.manual.id}`)).toMatchObject({ chunks: 2 });
    expect(await ok("GET", `/v1/collections/${collectionId}`)).toMatchObject({ chunks: before.chunks - 1 });
    const gone = await call("POST", "/v1/search", {
      query: "Les orties font un purin contre les pucerons.",
      document_ids: [docs.manual.id],
    });
    expect(gone.body.data.map((r: Json) => r.chunk.id)).not.toContain(2);

    expect(await ok("DELETE", `/v1/documents/${docs.pdf.id}`)).toEqual({
      id: docs.pdf.id,
      object: "document.deleted",
      deleted: true,
    });
    await expectOpenAIError(
      asResponse(await call("GET", `/v1/documents/${docs.pdf.id}`)),
      404,
      "invalid_request_error",
    );
    expect(await ok("GET", `/v1/collections/${collectionId}`)).toMatchObject({
      documents: before.documents - 1,
      chunks: before.chunks - 1 - docs.pdf.chunks,
    });
    const radis = await call("POST", "/v1/search", { query: "radis", method: "lexical" });
    expect(radis.body.data).toEqual([]);

    expect(await ok("DELETE", `/v1/collections/${collectionId}`)).toMatchObject({ deleted: true });
    await expectOpenAIError(
      asResponse(await call("GET", `/v1/collections/${collectionId}`)),
      404,
      "invalid_request_error",
    );
    await expectOpenAIError(
      asResponse(await call("GET", `/v1/documents/${docs.markdown.id}`)),
      404,
      "invalid_request_error",
    );
    expect((await ok("GET", "/v1/documents?limit=100")).data).toEqual([]);
    const after = await call("POST", "/v1/search", { query: "compost", method: "lexical" });
    expect(after.body.data).toEqual([]);
  });

  it("records the embeddings of ingestion and search in the caller's usage (endpoints documents, search)", async () => {
    const usage = async (endpoint: string) => (await ok("GET", `/v1/me/usage?endpoint=${endpoint}&limit=100`)).data;
    let search: Json[] = [];
    let documents: Json[] = [];
    for (let i = 0; i < 100; i++) {
      [search, documents] = await Promise.all([usage("search"), usage("documents")]);
      if (search.length > 0 && documents.length > 0) break;
      await sleep(50);
    }
    expect(search.length).toBeGreaterThan(0);
    expect(documents.length).toBeGreaterThan(0);
    for (const r of [...search, ...documents]) {
      expect(r).toMatchObject({ user_id: ada.id, model: EMBED, status: 200 });
      expect(r.prompt_tokens).toBeGreaterThan(0);
    }
    expect(search.every((r) => r.endpoint === "search")).toBe(true);
    expect(documents.every((r) => r.endpoint === "documents")).toBe(true);
  });

  it("documents the routes in /openapi.json", async () => {
    const spec = (await (await fetch(`${t.httpUrl}/openapi.json`)).json()) as Json;
    for (const p of [
      "/v1/collections",
      "/v1/collections/{id}",
      "/v1/documents",
      "/v1/documents/{id}",
      "/v1/documents/{id}/chunks",
      "/v1/documents/{id}/chunks/{chunk_id}",
      "/v1/search",
    ])
      expect(spec.paths[p], p).toBeDefined();
    expect(Object.keys(spec.paths["/v1/documents"].post.requestBody.content).sort()).toEqual([
      "application/json",
      "multipart/form-data",
    ]);
  });
});
