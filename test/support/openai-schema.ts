import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import { expect } from "vitest";
import { parse } from "yaml";

/**
 * Validation against OpenAI's official OpenAPI document (a 3 MB YAML, OpenAPI 3.1), so that "OpenAI-compatible"
 * is checked against the source rather than against our own idea of it.
 *
 * Parsing the YAML with `yaml` takes 0.8–1.1 s on this machine when idle, up to 2.3 s under a parallel test run
 * (measured with `measureOpenAIYamlParse()`). It is done once per test process (module cache), and the result is
 * also kept as JSON under node_modules/.cache, keyed by the document's hash, so that later processes (vitest runs
 * each file in its own fork) read it in about 50 ms. Each component schema is compiled once per process (about
 * 40 ms for ErrorResponse).
 */

const here = path.dirname(fileURLToPath(import.meta.url));
/** The shared copy (see /work/shared/openai-openapi/SOURCE.md); override with OPENAI_OPENAPI_PATH. */
export const OPENAI_OPENAPI_PATH =
  process.env.OPENAI_OPENAPI_PATH ?? path.resolve(here, "../../../shared/openai-openapi/openapi.yaml");

/** The id under which the whole `components.schemas` map is registered with ajv. */
const DOC_ID = "https://openai.local/openapi.json";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

interface Loaded {
  doc: JsonObject;
  ajv: Ajv2020;
  /** Time to obtain the parsed document in this process. */
  parseMs: number;
  /** Whether it came from the JSON cache rather than from parsing the YAML. */
  fromCache: boolean;
  validators: Map<string, ValidateFunction>;
}

let loaded: Loaded | undefined;

const isObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

/** Keywords whose value is a map name → schema (the names are data, not keywords). */
const SCHEMA_MAPS = new Set(["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"]);
/** Keywords whose value is a schema or an array of schemas. */
const SCHEMA_VALUES = new Set([
  "items",
  "prefixItems",
  "additionalProperties",
  "unevaluatedProperties",
  "unevaluatedItems",
  "contains",
  "propertyNames",
  "not",
  "if",
  "then",
  "else",
  "allOf",
  "anyOf",
  "oneOf",
]);

/**
 * OpenAPI dialect → plain JSON Schema 2020-12, on a copy:
 * - `nullable: true` (an OpenAPI 3.0 leftover) → `"null"` added to `type`, or `anyOf: [schema, {type: "null"}]`;
 * - `discriminator` dropped (an annotation for code generators; the `oneOf`/`anyOf` next to it still validates);
 * - boolean `exclusiveMinimum`/`exclusiveMaximum` (3.0 style) → the 2020-12 numeric form;
 * - `x-*` extensions, `example`, `externalDocs`, `xml` dropped (ajv would only ignore them).
 */
export function toJsonSchema(schema: Json): Json {
  if (Array.isArray(schema)) return schema.map(toJsonSchema);
  if (!isObject(schema)) return schema;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k.startsWith("x-") || k === "discriminator" || k === "example" || k === "externalDocs" || k === "xml") continue;
    if (k === "nullable") continue;
    if (SCHEMA_MAPS.has(k) && isObject(v)) {
      out[k] = Object.fromEntries(Object.entries(v).map(([name, s]) => [name, toJsonSchema(s)]));
    } else if (SCHEMA_VALUES.has(k)) {
      out[k] = toJsonSchema(v);
    } else {
      out[k] = v;
    }
  }
  for (const [bool, num] of [
    ["exclusiveMinimum", "minimum"],
    ["exclusiveMaximum", "maximum"],
  ] as const) {
    if (typeof out[bool] === "boolean") {
      if (out[bool] === true && typeof out[num] === "number") {
        out[bool] = out[num];
        delete out[num];
      } else {
        delete out[bool];
      }
    }
  }
  if (schema.nullable === true) {
    const t = out.type;
    if (typeof t === "string") out.type = t === "null" ? t : [t, "null"];
    else if (Array.isArray(t)) out.type = t.includes("null") ? t : [...t, "null"];
    else return { anyOf: [out, { type: "null" }] };
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
  }
  return out;
}

const CACHE_DIR = path.resolve(here, "../../node_modules/.cache/passerelle");

/** The YAML parsed, through a JSON cache keyed by the YAML's hash (written atomically: forks race for it). */
function readDoc(useCache: boolean): { doc: JsonObject; fromCache: boolean } {
  if (!fs.existsSync(OPENAI_OPENAPI_PATH)) {
    throw new Error(`OpenAI's OpenAPI document is not at ${OPENAI_OPENAPI_PATH}; set OPENAI_OPENAPI_PATH to its copy.`);
  }
  const text = fs.readFileSync(OPENAI_OPENAPI_PATH, "utf8");
  const hash = createHash("sha256").update(text).digest("hex").slice(0, 16);
  const cached = path.join(CACHE_DIR, `openai-openapi-${hash}.json`);
  if (useCache) {
    try {
      return { doc: JSON.parse(fs.readFileSync(cached, "utf8")) as JsonObject, fromCache: true };
    } catch {
      // absent or unreadable: parse the YAML
    }
  }
  const doc = parse(text, { maxAliasCount: -1 }) as JsonObject;
  try {
    fs.mkdirSync(CACHE_DIR, { recursive: true });
    const tmp = `${cached}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(doc));
    fs.renameSync(tmp, cached);
  } catch {
    // a read-only tree only loses the speed-up
  }
  return { doc, fromCache: false };
}

/** Parses the YAML itself, bypassing the cache, and returns the time it took (for reporting; it is slow). */
export function measureOpenAIYamlParse(): number {
  const t0 = performance.now();
  readDoc(false);
  return performance.now() - t0;
}

function load(): Loaded {
  if (loaded) return loaded;
  const t0 = performance.now();
  const { doc, fromCache } = readDoc(true);
  const parseMs = performance.now() - t0;
  const components = doc.components;
  if (!isObject(components) || !isObject(components.schemas)) {
    throw new Error(`${OPENAI_OPENAPI_PATH} has no components.schemas`);
  }
  const schemas = Object.fromEntries(Object.entries(components.schemas).map(([name, s]) => [name, toJsonSchema(s)]));
  // strict: false — the document carries OpenAPI-only keywords; formats (unixtime, binary, …) are not checked.
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false, logger: false });
  // `$ref: '#/components/schemas/X'` resolves against this wrapper's id: the map is registered whole, and ajv
  // compiles only what a component reaches.
  ajv.addSchema({ $id: DOC_ID, components: { schemas } }, undefined, undefined, false);
  loaded = { doc, ajv, parseMs, fromCache, validators: new Map() };
  return loaded;
}

/** The parsed document (cached), how long obtaining it took in this process, and whether the JSON cache served it. */
export function openAISpec(): { doc: Record<string, unknown>; parseMs: number; fromCache: boolean } {
  const l = load();
  return { doc: l.doc, parseMs: l.parseMs, fromCache: l.fromCache };
}

function validatorFor(componentName: string): ValidateFunction {
  const l = load();
  const cached = l.validators.get(componentName);
  if (cached) return cached;
  const schemas = (l.doc.components as JsonObject).schemas as JsonObject;
  if (!(componentName in schemas))
    throw new Error(`OpenAI's OpenAPI document has no component schema '${componentName}'`);
  const validate = l.ajv.compile({ $ref: `${DOC_ID}#/components/schemas/${encodeURIComponent(componentName)}` });
  l.validators.set(componentName, validate);
  return validate;
}

/** Throws, listing every ajv error, unless `value` is valid against `#/components/schemas/<componentName>`. */
export function validateOpenAI(componentName: string, value: unknown): void {
  const validate = validatorFor(componentName);
  if (validate(value)) return;
  const errors = (validate.errors ?? []).map(
    (e) => `  ${e.instancePath || "(root)"} ${e.message ?? "is invalid"} (${e.schemaPath} ${JSON.stringify(e.params)})`,
  );
  throw new Error(
    `value does not match OpenAI's ${componentName}:\n${errors.join("\n")}\nvalue: ${JSON.stringify(value)}`,
  );
}

export interface OpenAIErrorResponse {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/**
 * Asserts that `res` is an error in OpenAI's shape: the status, a JSON body valid against OpenAI's
 * `ErrorResponse`, the error `type` when given, and an `x-request-id` header. Returns the body.
 */
export async function expectOpenAIError(res: Response, status: number, type?: string): Promise<OpenAIErrorResponse> {
  const text = await res.text();
  expect(res.status, `status (body: ${text})`).toBe(status);
  expect(res.headers.get("content-type") ?? "", "content-type").toMatch(/^application\/json/);
  expect(res.headers.get("x-request-id"), "x-request-id header").toBeTruthy();
  const body: unknown = JSON.parse(text);
  validateOpenAI("ErrorResponse", body);
  const typed = body as OpenAIErrorResponse;
  if (type !== undefined) expect(typed.error.type, `error.type (body: ${text})`).toBe(type);
  expect(typed.error.message.length, "error.message is not empty").toBeGreaterThan(0);
  return typed;
}
