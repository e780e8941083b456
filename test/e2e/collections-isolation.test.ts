import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CollectionService } from "../../gen/passerelle/collections/v1/collection_service_pb.js";
import { Visibility } from "../../gen/passerelle/collections/v1/resources_pb.js";
import { SearchService } from "../../gen/passerelle/search/v1/search_service_pb.js";
import { utf8 } from "../fixtures/documents.js";
import { bearer, connectCode, createRole, createUser, type Json, rest, type TestUser } from "../support/accounts.js";
import { testRedisUrl } from "../support/env.js";
import { grant, writeModelsFile } from "../support/governance.js";
import { expectOpenAIError } from "../support/openai-schema.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { type Simulator, startSimulator } from "../upstream/simulator.js";

const EMBED = "rag-embed";
const SECRET = "Le code du coffre de la cave est quarante-deux.";
/** Shares words with SECRET ("code", "cave"): a lexical search for them matches both documents. */
const SHARED = "Le code de la bibliothèque municipale : elle ouvre le samedi matin, et sa cave aussi.";

/** `POST /v1/documents` as multipart/form-data (text fields, and the file as the `file` part). */
async function upload(
  t: TestPlatform,
  key: string,
  fields: Record<string, string>,
  file: { name: string; data: Uint8Array },
) {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  form.append("file", new Blob([file.data]), file.name);
  const res = await fetch(`${t.httpUrl}/v1/documents`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}` },
    body: form,
  });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as Json, headers: res.headers, text };
}

/**
 * Who sees what: a user's private collection, its documents and chunks do not exist for anyone else (every route
 * answers 404, over REST and over Connect); a public one is readable and searchable by all but written by its owner
 * only; making one public needs `create_public_collection`.
 */
describe("collections isolation", () => {
  let sim: Simulator;
  let t: TestPlatform;
  let dir: string;
  let ada: TestUser;
  let bob: TestUser;
  let priv: Json;
  let privDoc: Json;
  let pub: Json;
  let pubDoc: Json;

  const as = (u: TestUser) => (method: string, route: string, body?: unknown) =>
    rest(t, method, route, { key: u.key, body });
  const asResponse = (r: { status: number; body: unknown; headers: Headers }) =>
    new Response(JSON.stringify(r.body), { status: r.status, headers: r.headers });
  const notFound = async (r: { status: number; body: unknown; headers: Headers }, what: string) => {
    expect(r.status, `${what}: ${JSON.stringify(r.body)}`).toBe(404);
    await expectOpenAIError(asResponse(r), 404, "invalid_request_error");
  };

  /** A collection of `owner`'s with one ingested document. */
  async function seed(owner: TestUser, visibility: "private" | "public", text: string) {
    const c = await as(owner)("POST", "/v1/collections", { name: `${visibility} notes`, visibility });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    const d = await upload(t, owner.key, { collection: c.body.id, wait: "true" }, { name: "n.md", data: utf8(text) });
    expect(d.status, d.text).toBe(201);
    expect(d.body.status).toBe("ready");
    return { collection: c.body, document: d.body };
  }

  beforeAll(async () => {
    sim = await startSimulator();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-isolation-"));
    const models = await writeModelsFile(dir, [
      { name: EMBED, type: "text-embeddings-inference", urls: [sim.url], upstreamModel: "sim-embed" },
    ]);
    t = await startTestPlatform({
      redis: Boolean(testRedisUrl()),
      env: { PASSERELLE_MODELS_FILE: models, PASSERELLE_RAG_EMBEDDINGS_MODEL: EMBED },
    });
    const publisher = await createRole(t, ["create_public_collection"]);
    const reader = await createRole(t);
    for (const role of [publisher, reader]) await grant(t.httpUrl, t.adminKey, role.id, EMBED);
    ada = await createUser(t, { role: publisher.id });
    bob = await createUser(t, { role: reader.id });
    ({ collection: priv, document: privDoc } = await seed(ada, "private", SECRET));
    ({ collection: pub, document: pubDoc } = await seed(ada, "public", SHARED));
  });
  afterAll(async () => {
    await t?.close();
    await sim?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it("a private collection, its documents and chunks answer 404 to another user on every route", async () => {
    const b = as(bob);
    const c = `/v1/collections/${priv.id}`;
    const d = `/v1/documents/${privDoc.id}`;
    await notFound(await b("GET", c), "get collection");
    await notFound(await b("PATCH", c, { name: "pris" }), "patch collection");
    await notFound(await b("DELETE", c), "delete collection");
    await notFound(await b("GET", `/v1/documents?collection=${priv.id}`), "list documents of the collection");
    await notFound(await b("POST", "/v1/documents", { collection: priv.id, name: "intrus" }), "create empty document");
    const up = await upload(t, bob.key, { collection: priv.id }, { name: "x.md", data: utf8("intrus") });
    await notFound(up, "upload into the collection");
    await notFound(await b("GET", d), "get document");
    await notFound(await b("DELETE", d), "delete document");
    await notFound(await b("GET", `${d}/chunks`), "list chunks");
    await notFound(await b("GET", `${d}/chunks/1`), "get chunk");
    await notFound(await b("POST", `${d}/chunks`, { chunks: [{ content: "intrus" }] }), "create chunks");
    await notFound(await b("DELETE", `${d}/chunks/1`), "delete chunk");
    await notFound(
      await b("POST", "/v1/search", { query: SECRET, collection_ids: [priv.id] }),
      "search the collection",
    );
    await notFound(
      await b("POST", "/v1/search", { query: SECRET, collection_ids: [pub.id, priv.id] }),
      "search it beside a public one",
    );

    // Bob's listings do not show it; nothing of Ada's changed.
    const mine = await b("GET", "/v1/collections?limit=100");
    expect(mine.body.data.map((x: Json) => x.id)).toEqual([pub.id]);
    // Without a collection, the list is of one's own documents (public ones are listed per collection).
    expect((await b("GET", "/v1/documents?limit=100")).body.data).toEqual([]);
    const still = await as(ada)("GET", d);
    expect(still.body).toMatchObject({ status: "ready", chunks: privDoc.chunks });
    expect((await as(ada)("GET", c)).body).toMatchObject({ name: priv.name, documents: 1 });
  });

  it("a search naming another user's private document answers 404", async () => {
    const r = await as(bob)("POST", "/v1/search", { query: SECRET, document_ids: [privDoc.id] });
    // Never a leak, whatever the status…
    expect(r.body.data ?? []).toEqual([]);
    // …and, like a collection named, a document one may not read does not exist.
    await notFound(r, "search its document");
  });

  it("another user's unfiltered search never returns private chunks", async () => {
    for (const method of ["semantic", "lexical", "hybrid"]) {
      const query = method === "lexical" ? "code cave" : SECRET;
      const r = await as(bob)("POST", "/v1/search", { query, method, limit: 100 });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.data.length, method).toBeGreaterThan(0);
      for (const hit of r.body.data) {
        expect(hit.chunk.collection_id).toBe(pub.id);
        expect(hit.chunk.content).not.toContain("coffre");
      }
    }
    // The owner finds it.
    const own = await as(ada)("POST", "/v1/search", { query: "code cave", method: "lexical" });
    expect(new Set(own.body.data.map((x: Json) => x.chunk.document_id))).toEqual(new Set([privDoc.id, pubDoc.id]));
  });

  it("a public collection is readable and searchable by all, but written by its owner only", async () => {
    const b = as(bob);
    const c = `/v1/collections/${pub.id}`;
    const d = `/v1/documents/${pubDoc.id}`;
    expect((await b("GET", c)).body).toMatchObject({ id: pub.id, visibility: "public", owner: ada.id });
    expect((await b("GET", `/v1/documents?collection=${pub.id}`)).body.data.map((x: Json) => x.id)).toEqual([
      pubDoc.id,
    ]);
    expect((await b("GET", d)).body).toMatchObject({ id: pubDoc.id, status: "ready" });
    const chunks = await b("GET", `${d}/chunks`);
    expect(chunks.body.data[0]).toMatchObject({ id: 1, document_id: pubDoc.id });
    expect((await b("GET", `${d}/chunks/1`)).status).toBe(200);
    const found = await b("POST", "/v1/search", { query: SHARED, collection_ids: [pub.id] });
    expect(found.body.data[0]).toMatchObject({ chunk: { document_id: pubDoc.id, content: SHARED } });

    await notFound(await b("PATCH", c, { name: "pris" }), "patch public collection");
    await notFound(await b("DELETE", c), "delete public collection");
    await notFound(await b("POST", "/v1/documents", { collection: pub.id, name: "intrus" }), "create in it");
    await notFound(await b("DELETE", d), "delete its document");
    await notFound(await b("POST", `${d}/chunks`, { chunks: [{ content: "intrus" }] }), "append chunks");
    await notFound(await b("DELETE", `${d}/chunks/1`), "delete its chunk");
    expect((await as(ada)("GET", c)).body).toMatchObject({ name: pub.name, documents: 1, chunks: pubDoc.chunks });
  });

  it("making a collection public needs create_public_collection (403)", async () => {
    const b = as(bob);
    const created = await b("POST", "/v1/collections", { name: "à moi", visibility: "public" });
    await expectOpenAIError(asResponse(created), 403, "permission_error");
    const own = await b("POST", "/v1/collections", { name: "à moi" });
    expect(own.status).toBe(201);
    const patched = await b("PATCH", `/v1/collections/${own.body.id}`, { visibility: "public" });
    await expectOpenAIError(asResponse(patched), 403, "permission_error");
    expect((await b("GET", `/v1/collections/${own.body.id}`)).body.visibility).toBe("private");
    // Ada may publish, and unpublish: then Bob no longer sees it.
    const later = await as(ada)("POST", "/v1/collections", { name: "bientôt public" });
    expect((await as(ada)("PATCH", `/v1/collections/${later.body.id}`, { visibility: "public" })).status).toBe(200);
    expect((await b("GET", `/v1/collections/${later.body.id}`)).status).toBe(200);
    expect((await as(ada)("PATCH", `/v1/collections/${later.body.id}`, { visibility: "private" })).status).toBe(200);
    await notFound(await b("GET", `/v1/collections/${later.body.id}`), "unpublished collection");
  });

  it("over Connect: the same refusals are NotFound", async () => {
    const transport = createConnectTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" });
    const collections = createClient(CollectionService, transport);
    const search = createClient(SearchService, transport);
    const b = bearer(bob.key);
    const cases: [string, () => Promise<unknown>][] = [
      ["GetCollection", () => collections.getCollection({ id: priv.id }, b)],
      ["UpdateCollection", () => collections.updateCollection({ id: priv.id, name: "pris" }, b)],
      ["UpdateCollection (public)", () => collections.updateCollection({ id: pub.id, name: "pris" }, b)],
      ["DeleteCollection", () => collections.deleteCollection({ id: priv.id }, b)],
      ["ListDocuments", () => collections.listDocuments({ collectionId: priv.id }, b)],
      ["CreateDocument", () => collections.createDocument({ collectionId: pub.id, name: "intrus" }, b)],
      ["GetDocument", () => collections.getDocument({ id: privDoc.id }, b)],
      ["DeleteDocument", () => collections.deleteDocument({ id: pubDoc.id }, b)],
      ["ListChunks", () => collections.listChunks({ documentId: privDoc.id }, b)],
      ["GetChunk", () => collections.getChunk({ documentId: privDoc.id, chunkId: 1n }, b)],
      ["CreateChunks", () => collections.createChunks({ documentId: pubDoc.id, chunks: [{ content: "intrus" }] }, b)],
      ["DeleteChunk", () => collections.deleteChunk({ documentId: pubDoc.id, chunkId: 1n }, b)],
      ["Search", () => search.search({ query: SECRET, collectionIds: [priv.id] }, b)],
    ];
    for (const [name, call] of cases) expect(await connectCode(call()), name).toBe(Code.NotFound);
    const watch = (async () => {
      for await (const _ of collections.watchDocument({ id: privDoc.id }, b)) return;
    })();
    expect(await connectCode(watch), "WatchDocument").toBe(Code.NotFound);
    expect(
      await connectCode(collections.createCollection({ name: "x", visibility: Visibility.PUBLIC }, b)),
      "CreateCollection public",
    ).toBe(Code.PermissionDenied);
    // The owner's own call over the same transport succeeds.
    const own = await collections.getCollection({ id: priv.id }, bearer(ada.key));
    expect(own.collection?.ownerId).toBe(ada.id);
  });
});
