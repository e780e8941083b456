// A little over 400 lines: the document's structure, its coverage of the registered routes and the live responses
// against the documented schemas belong to one contract and share one platform.
import { createRouterTransport } from "@connectrpc/connect";
import { Ajv2020 } from "ajv/dist/2020.js";
import Fastify, { type RouteOptions } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bridgePlugin } from "../../bridge/app.js";
import { expectOpenAIError, openAISpec, validateOpenAI } from "../support/openai-schema.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";

/**
 * GET /openapi.json: a valid OpenAPI 3.1 document that describes every /v1 route the bridge registers, with
 * bearer security, and that tells the truth about what the live API returns. /docs serves the docs page.
 */

type Json = Record<string, unknown>;
const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;

/** The routes of the brief, as `METHOD /path` in OpenAPI's template syntax; each must be documented. */
const REQUIRED = [
  "GET /v1/me",
  "PATCH /v1/me",
  "POST /v1/auth/login",
  "GET /v1/models",
  "GET /v1/models/{model}",
  "POST /v1/admin/roles/{id}/models/{model}",
  "DELETE /v1/admin/roles/{id}/models/{model}",
  "POST /v1/chat/completions",
  "POST /v1/embeddings",
  "GET /v1/admin/provider-states",
  ...[
    "/v1/me/keys",
    "/v1/admin/keys",
    "/v1/admin/users",
    "/v1/admin/roles",
    "/v1/admin/organizations",
    "/v1/admin/models",
    "/v1/admin/providers",
  ].flatMap((p) => [`GET ${p}`, `POST ${p}`, `GET ${p}/{id}`, `PATCH ${p}/{id}`, `DELETE ${p}/{id}`]),
];
/** Routes callable without an API key. */
const PUBLIC = new Set(["POST /v1/auth/login"]);
/** Routes registered but deliberately left out of the document (aliases kept for the reference system's clients). */
const HIDDEN_ALIASES = new Set([
  "GET /v1/me/info",
  // Model names may contain `/`: `/v1/models/{model}` takes the name percent-encoded, this one as sent.
  "GET /v1/models/*",
]);

const escapePointer = (s: string) => s.replace(/~/g, "~0").replace(/\//g, "~1");
const SCHEMA_BASE = "https://passerelle.local/schemas/";

/** A copy of a schema whose `#/components/schemas/X` refs point at `X` registered on its own (see strictAjv). */
function detach(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(detach);
  if (!node || typeof node !== "object") return node;
  return Object.fromEntries(
    Object.entries(node).map(([k, v]) =>
      k === "$ref" && typeof v === "string" && v.startsWith("#/components/schemas/")
        ? [k, `${SCHEMA_BASE}${v.slice("#/components/schemas/".length)}`]
        : [k, detach(v)],
    ),
  );
}

/**
 * A strict JSON Schema 2020-12 validator (OpenAPI 3.1's dialect) holding the document's component schemas, each
 * under its own id: the schemas must be clean, not just tolerated.
 */
function strictAjv(doc: Json): Ajv2020 {
  const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
  const schemas = ((doc.components as Json).schemas ?? {}) as Record<string, Json>;
  for (const [name, schema] of Object.entries(schemas)) {
    ajv.addSchema({ ...(detach(schema) as Json), $id: `${SCHEMA_BASE}${name}` });
  }
  return ajv;
}
const toTemplate = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, "{$1}");

function operations(doc: Json): Array<{ key: string; path: string; method: string; op: Json }> {
  const out: Array<{ key: string; path: string; method: string; op: Json }> = [];
  for (const [path, item] of Object.entries(doc.paths as Record<string, Json>)) {
    for (const method of METHODS) {
      const op = item[method] as Json | undefined;
      if (op) out.push({ key: `${method.toUpperCase()} ${path}`, path, method, op });
    }
  }
  return out;
}

/** Every `$ref` in the document, with where it was found. */
function refs(node: unknown, at = "#", out: Array<{ ref: string; at: string }> = []) {
  if (Array.isArray(node)) {
    for (const [i, v] of node.entries()) refs(v, `${at}/${i}`, out);
  } else if (node && typeof node === "object") {
    for (const [k, v] of Object.entries(node)) {
      if (k === "$ref" && typeof v === "string") out.push({ ref: v, at });
      else refs(v, `${at}/${escapePointer(k)}`, out);
    }
  }
  return out;
}

function resolvePointer(doc: unknown, ref: string): unknown {
  if (!ref.startsWith("#/")) return undefined;
  let node: unknown = doc;
  for (const raw of ref.slice(2).split("/")) {
    const key = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
    if (!node || typeof node !== "object" || !(key in node)) return undefined;
    node = (node as Json)[key];
  }
  return node;
}

describe("GET /openapi.json", () => {
  let t: TestPlatform;
  let doc: Json;
  let raw: Response;
  /** Routes the bridge plugin registers, seen by an onRoute hook on a bare instance of the same plugin. */
  const registered: Array<{ key: string; hidden: boolean }> = [];
  let ajv: Ajv2020;

  beforeAll(async () => {
    t = await startTestPlatform();
    raw = await fetch(`${t.httpUrl}/openapi.json`);
    doc = (await raw.clone().json()) as Json;

    const app = Fastify();
    app.addHook("onRoute", (r: RouteOptions) => {
      const methods = Array.isArray(r.method) ? r.method : [r.method];
      for (const m of methods) {
        if (m === "HEAD" || !r.url.startsWith("/v1")) continue;
        registered.push({ key: `${m} ${toTemplate(r.url)}`, hidden: Boolean((r.schema as Json | undefined)?.hide) });
      }
    });
    await app.register(bridgePlugin, { transport: createRouterTransport(() => {}) });
    await app.ready();
    await app.close();

    ajv = strictAjv(doc);
  });
  afterAll(async () => {
    await t?.close();
  });

  it("is served without a key, as JSON, with x-request-id", () => {
    expect(raw.status).toBe(200);
    expect(raw.headers.get("content-type")).toMatch(/^application\/json/);
    expect(raw.headers.get("x-request-id")).toBeTruthy();
  });

  describe("is a valid OpenAPI 3.1 document", () => {
    it("has the 3.1 version field, info and paths", () => {
      expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
      const info = doc.info as Json;
      expect(typeof info.title).toBe("string");
      expect((info.title as string).length).toBeGreaterThan(0);
      expect(typeof info.version).toBe("string");
      expect(typeof doc.paths).toBe("object");
      const allowed = new Set([
        "openapi",
        "info",
        "jsonSchemaDialect",
        "servers",
        "paths",
        "webhooks",
        "components",
        "security",
        "tags",
        "externalDocs",
      ]);
      for (const k of Object.keys(doc))
        if (!k.startsWith("x-")) expect(allowed, `unknown top-level field ${k}`).toContain(k);
    });

    it("has well-formed operations: responses with descriptions, declared path parameters, unique operationIds", () => {
      const ids = new Set<string>();
      for (const { key, path, op } of operations(doc)) {
        expect(path, key).toMatch(/^\//);
        const responses = op.responses as Record<string, Json>;
        expect(Object.keys(responses).length, key).toBeGreaterThan(0);
        for (const [status, r] of Object.entries(responses)) {
          expect(status, key).toMatch(/^([1-5](\d\d|XX)|default)$/);
          expect(typeof r.description, `${key} ${status} description`).toBe("string");
        }
        const params = (op.parameters ?? []) as Json[];
        for (const p of params) {
          expect(["query", "header", "path", "cookie"], `${key} parameter ${String(p.name)}`).toContain(p.in);
          expect(typeof p.name).toBe("string");
          expect(p.schema ?? p.content, `${key} parameter ${String(p.name)} has a schema`).toBeDefined();
        }
        const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
        for (const name of templated) {
          const p = params.find((x) => x.in === "path" && x.name === name);
          expect(p, `${key}: path parameter {${name}} is declared`).toBeDefined();
          expect(p?.required, `${key}: path parameter {${name}} is required`).toBe(true);
        }
        for (const p of params.filter((x) => x.in === "path")) expect(templated, key).toContain(p.name);
        if (op.operationId !== undefined) {
          expect(ids.has(op.operationId as string), `duplicate operationId ${String(op.operationId)}`).toBe(false);
          ids.add(op.operationId as string);
        }
        if (op.requestBody) {
          const content = (op.requestBody as Json).content as Record<string, Json>;
          expect(Object.keys(content), key).toContain("application/json");
        }
      }
    });

    it("resolves every $ref inside the document", () => {
      const all = refs(doc);
      expect(all.length).toBeGreaterThan(0);
      for (const { ref, at } of all) expect(resolvePointer(doc, ref), `${ref} at ${at}`).toBeDefined();
    });

    it("has schemas that compile as strict JSON Schema 2020-12", () => {
      const pointers: string[] = [];
      for (const name of Object.keys(((doc.components as Json).schemas ?? {}) as Json)) {
        pointers.push(`#/components/schemas/${escapePointer(name)}`);
      }
      for (const { path, method, op } of operations(doc)) {
        const base = `#/paths/${escapePointer(path)}/${method}`;
        ((op.parameters ?? []) as Json[]).forEach((_p, i) => {
          pointers.push(`${base}/parameters/${i}/schema`);
        });
        if (op.requestBody) pointers.push(`${base}/requestBody/content/application~1json/schema`);
        for (const [status, r] of Object.entries(op.responses as Record<string, Json>)) {
          for (const type of Object.keys((r.content ?? {}) as Json)) {
            pointers.push(`${base}/responses/${status}/content/${escapePointer(type)}/schema`);
          }
        }
      }
      expect(pointers.length).toBeGreaterThan(50);
      for (const p of pointers) {
        const schema = resolvePointer(doc, p);
        expect(schema, p).toBeTypeOf("object");
        expect(() => ajv.compile(detach(schema) as Json), p).not.toThrow();
      }
    });
  });

  describe("lists the routes", () => {
    it("documents every route of the brief", () => {
      const documented = new Set(operations(doc).map((o) => o.key));
      for (const key of REQUIRED) expect(documented, key).toContain(key);
    });

    it("documents every /v1 route the bridge registers, and nothing it does not", () => {
      expect(registered.length).toBeGreaterThan(REQUIRED.length - 1);
      const documented = new Set(operations(doc).map((o) => o.key));
      const visible = registered.filter((r) => !r.hidden).map((r) => r.key);
      for (const key of visible) expect(documented, `registered but not documented: ${key}`).toContain(key);
      for (const key of documented) {
        if (key.split(" ")[1]?.startsWith("/v1"))
          expect(visible, `documented but not registered: ${key}`).toContain(key);
      }
    });

    it("hides only the known aliases", () => {
      const hidden = registered.filter((r) => r.hidden).map((r) => r.key);
      for (const key of hidden) expect(HIDDEN_ALIASES, `unexpected hidden /v1 route ${key}`).toContain(key);
    });

    it("leaves the infrastructure routes out", () => {
      const paths = Object.keys(doc.paths as Json);
      for (const p of ["/openapi.json", "/health", "/health/ready"]) expect(paths).not.toContain(p);
      expect(paths.filter((p) => p.startsWith("/docs"))).toEqual([]);
      expect(paths.filter((p) => p.startsWith("/passerelle."))).toEqual([]);
    });
  });

  describe("security", () => {
    it("declares bearer auth", () => {
      const schemes = (doc.components as Json).securitySchemes as Record<string, Json>;
      expect(schemes.bearer).toMatchObject({ type: "http", scheme: "bearer" });
    });

    it("puts bearer on every operation but the public ones, and names only declared schemes", () => {
      const schemes = Object.keys((doc.components as Json).securitySchemes as Json);
      for (const { key, op } of operations(doc)) {
        const security = (op.security ?? doc.security) as Array<Record<string, unknown>> | undefined;
        if (PUBLIC.has(key)) {
          expect(
            security === undefined || security.length === 0 || security.some((s) => Object.keys(s).length === 0),
            key,
          ).toBe(true);
          continue;
        }
        expect(security, key).toEqual([{ bearer: [] }]);
        for (const req of security ?? []) for (const name of Object.keys(req)) expect(schemes, key).toContain(name);
      }
    });

    it("matches the live API: every secured operation answers 401 without a key, the public ones do not", async () => {
      for (const { key, path, method } of operations(doc)) {
        const url = `${t.httpUrl}${path.replace(/\{[^}]+\}/g, "0190a2b4-0000-7000-8000-000000000000")}`;
        const init: RequestInit = { method: method.toUpperCase() };
        if (["post", "patch", "put"].includes(method)) {
          init.headers = { "content-type": "application/json" };
          init.body = "{}";
        }
        const res = await fetch(url, init);
        if (PUBLIC.has(key)) {
          expect(res.status, key).not.toBe(401);
          await res.body?.cancel();
        } else {
          const body = await expectOpenAIError(res, 401, "invalid_request_error");
          expect(body.error.code, key).toBe("missing_api_key");
        }
      }
    });
  });

  describe("tells the truth about responses", () => {
    const auth = () => ({ authorization: `Bearer ${t.adminKey}` });
    const validate = (path: string, method: string, status: number, body: unknown) => {
      const pointer = `#/paths/${escapePointer(path)}/${method}/responses/${status}/content/application~1json/schema`;
      const schema = resolvePointer(doc, pointer);
      expect(schema, pointer).toBeTypeOf("object");
      const v = ajv.compile(detach(schema) as Json);
      expect(v(body), `${method.toUpperCase()} ${path} ${status}: ${JSON.stringify(v.errors)}`).toBe(true);
    };

    it("the documented Error schema is OpenAI's error shape", () => {
      const ours = (doc.components as Json).schemas as Record<string, Json>;
      const openai = openAISpec().doc.components as { schemas: Record<string, Json> };
      const oursError = (ours.Error?.properties as Record<string, Json> | undefined)?.error as Json;
      expect([...(oursError.required as string[])].sort()).toEqual(
        [...((openai.schemas.Error?.required as string[] | undefined) ?? [])].sort(),
      );
      expect(Object.keys(oursError.properties as Json).sort()).toEqual(
        Object.keys((openai.schemas.Error?.properties as Json | undefined) ?? {}).sort(),
      );
    });

    it("GET /v1/me, the lists and a created key match their documented schemas", async () => {
      const me = await fetch(`${t.httpUrl}/v1/me`, { headers: auth() });
      expect(me.status).toBe(200);
      validate("/v1/me", "get", 200, await me.json());
      for (const p of [
        "/v1/me/keys",
        "/v1/admin/keys",
        "/v1/admin/users",
        "/v1/admin/roles",
        "/v1/admin/organizations",
        "/v1/models",
        "/v1/admin/models",
        "/v1/admin/providers",
      ]) {
        const res = await fetch(`${t.httpUrl}${p}`, { headers: auth() });
        expect(res.status, p).toBe(200);
        validate(p, "get", 200, await res.json());
      }
      const created = await fetch(`${t.httpUrl}/v1/me/keys`, {
        method: "POST",
        headers: { ...auth(), "content-type": "application/json" },
        body: JSON.stringify({ name: "openapi-test" }),
      });
      expect(created.status).toBe(201);
      const key = (await created.json()) as { id: string };
      validate("/v1/me/keys", "post", 201, key);
      const revoked = await fetch(`${t.httpUrl}/v1/me/keys/${key.id}`, { method: "DELETE", headers: auth() });
      expect(revoked.status).toBe(200);
      validate("/v1/me/keys/{id}", "delete", 200, await revoked.json());
    });

    it("documented error responses match the live errors (and OpenAI's schema)", async () => {
      const res = await fetch(`${t.httpUrl}/v1/admin/users/nope`, { headers: auth() });
      const body = await expectOpenAIError(res, 404, "invalid_request_error");
      validate("/v1/admin/users/{id}", "get", 404, body);
      const bad = await fetch(`${t.httpUrl}/v1/admin/roles?limit=0`, { headers: auth() });
      validate("/v1/admin/roles", "get", 400, await expectOpenAIError(bad, 400, "invalid_request_error"));
      validateOpenAI("ErrorResponse", body);
    });
  });
});

describe("GET /docs", () => {
  let t: TestPlatform;
  beforeAll(async () => {
    t = await startTestPlatform();
  });
  afterAll(async () => {
    await t?.close();
  });

  it("serves the HTML docs page without a key", async () => {
    const res = await fetch(`${t.httpUrl}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toMatch(/<html|<!DOCTYPE|<!--/i);
    expect(html.toLowerCase()).toContain("swagger");
  });

  it("serves its assets and its copy of the document without a key", async () => {
    const css = await fetch(`${t.httpUrl}/docs/static/swagger-ui.css`);
    expect(css.status).toBe(200);
    await css.body?.cancel();
    const json = await fetch(`${t.httpUrl}/docs/json`);
    expect(json.status).toBe(200);
    const fromDocs = await json.json();
    const main = await (await fetch(`${t.httpUrl}/openapi.json`)).json();
    expect(fromDocs).toEqual(main);
  });

  it("an unknown /docs asset is a 404, not a 401", async () => {
    const res = await fetch(`${t.httpUrl}/docs/static/nope.js`);
    expect(res.status).toBe(404);
    await res.body?.cancel();
  });
});
