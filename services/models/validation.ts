import type { HandlerContext } from "@connectrpc/connect";
import { type Principal, principalOf } from "../platform/context.js";
import { invalidArgument, permissionDenied } from "../platform/errors.js";
import { isUuid } from "../platform/paging.js";

/**
 * Input rules of the model registry, shared by the RPCs and the YAML bootstrap: each check returns the normalized
 * value or throws a FieldError whose message completes "<field> …", so that an RPC reports `'url' must be an
 * http(s) URL.` and the YAML loader `models[0].providers[1].url must be an http(s) URL`.
 */
export class FieldError extends Error {
  /** A path under the field, e.g. `[2]` or `.zone`. */
  readonly sub: string;
  constructor(message: string, sub = "") {
    super(message);
    this.sub = sub;
  }
}

export const MODEL_TYPES = [
  "text-generation",
  "image-text-to-text",
  "text-embeddings-inference",
  "text-classification",
  "automatic-speech-recognition",
] as const;
export type ModelTypeName = (typeof MODEL_TYPES)[number];

export const PROVIDER_TYPES = ["vllm", "tei", "openai"] as const;
export type ProviderTypeName = (typeof PROVIDER_TYPES)[number];

/** Which upstreams can serve which model type (as in the reference system, minus its private provider kinds). */
export const PROVIDERS_BY_MODEL_TYPE: Readonly<Record<ModelTypeName, readonly ProviderTypeName[]>> = {
  "text-generation": ["vllm", "openai"],
  "image-text-to-text": ["vllm", "openai"],
  "text-embeddings-inference": ["vllm", "tei", "openai"],
  "text-classification": ["vllm", "tei"],
  "automatic-speech-recognition": ["vllm", "openai"],
};

export const DEFAULT_TIMEOUT_SECONDS = 300;
export const DEFAULT_WEIGHT = 1;
export const DEFAULT_CARBON_ZONE = "WOR";
export const MAX_ALIASES = 32;
export const MAX_TIMEOUT_SECONDS = 3600;
export const MAX_WEIGHT = 1000;
export const MAX_CONCURRENCY = 100_000;

// Letters, digits and `._:/@+-`, starting with a letter or digit: safe in a URL path, `/` allowed for HF-style names.
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Whether `name` could be a model's name or alias: others need no lookup (and some, with NUL, no database takes). */
export function isModelName(name: string): boolean {
  return MODEL_NAME.test(name);
}

export function checkModelName(raw: string): string {
  if (raw.length === 0) throw new FieldError("must not be empty");
  if (!MODEL_NAME.test(raw)) {
    throw new FieldError(
      "must be 1–200 characters among letters, digits and . _ : / @ + -, starting with a letter or digit",
    );
  }
  if (raw.endsWith("/") || raw.includes("//")) throw new FieldError("must not end with '/' or contain '//'");
  return raw;
}

/** Aliases: each a valid name, no duplicates, none equal to the model's name. */
export function checkAliases(raw: readonly string[], name: string | undefined): string[] {
  if (raw.length > MAX_ALIASES) throw new FieldError(`must have at most ${MAX_ALIASES} entries`);
  const seen = new Set<string>();
  for (const [i, alias] of raw.entries()) {
    try {
      checkModelName(alias);
    } catch (err) {
      if (err instanceof FieldError) throw new FieldError(err.message, `[${i}]`);
      throw err;
    }
    if (alias === name) throw new FieldError(`repeats the model's name '${alias}'`, `[${i}]`);
    if (seen.has(alias)) throw new FieldError(`repeats the alias '${alias}'`, `[${i}]`);
    seen.add(alias);
  }
  return [...seen];
}

export function checkCost(raw: number): number {
  if (!Number.isFinite(raw) || raw < 0 || raw > 1e9) throw new FieldError("must be a number between 0 and 1e9");
  return raw;
}

/** A base URL: http(s), no credentials, query or fragment, no `/v1` suffix; returned without a trailing slash. */
export function checkUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new FieldError("must be an http(s) URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new FieldError("must be an http(s) URL");
  if (url.username || url.password) throw new FieldError("must not contain credentials (use the key field)");
  if (url.search || url.hash || raw.includes("?") || raw.includes("#")) {
    throw new FieldError("must not have a query or a fragment");
  }
  if (raw.length > 2048) throw new FieldError("must be at most 2048 characters long");
  const base = url.href.replace(/\/+$/, "");
  if (/\/v1$/.test(base)) throw new FieldError("must be the server's base URL, without '/v1'");
  return base;
}

/** An upstream API key: stored as given, so only its shape is checked. */
export function checkKey(raw: string): string | null {
  if (raw === "") return null;
  if (raw.length > 4096 || /\s/.test(raw) || CONTROL.test(raw)) {
    throw new FieldError("must be at most 4096 characters, without spaces or control characters");
  }
  return raw;
}

/** A list's name filter (a substring of names): any text the database can compare, no longer than a name. */
export function checkNameFilter(raw: string): string {
  if (raw.length > 200 || CONTROL.test(raw))
    throw new FieldError("must be at most 200 characters, without control characters");
  return raw;
}

export function checkUpstreamModel(raw: string): string {
  if (raw.length === 0) throw new FieldError("must not be empty");
  if (raw.length > 200 || CONTROL.test(raw))
    throw new FieldError("must be 1–200 characters, without control characters");
  return raw;
}

export function checkInt(raw: number, min: number, max: number): number {
  if (!Number.isInteger(raw) || raw < min || raw > max)
    throw new FieldError(`must be an integer from ${min} to ${max}`);
  return raw;
}

export interface Carbon {
  zone: string;
  totalParamsB: number;
  activeParamsB: number;
}

/** ISO 3166-1 alpha-3 shape (three capital letters; `WOR` for the world average); parameters in billions. */
export function checkCarbon(raw: Carbon): Carbon {
  if (!/^[A-Z]{3}$/.test(raw.zone)) {
    throw new FieldError("must be an ISO 3166-1 alpha-3 country code (e.g. FRA) or WOR", ".zone");
  }
  for (const [k, v] of [
    ["total_params_b", raw.totalParamsB],
    ["active_params_b", raw.activeParamsB],
  ] as const) {
    if (!Number.isFinite(v) || v < 0 || v > 100_000) throw new FieldError("must be a number from 0 to 100000", `.${k}`);
  }
  if (raw.totalParamsB > 0 && raw.activeParamsB > raw.totalParamsB) {
    throw new FieldError("must not exceed total_params_b", ".active_params_b");
  }
  return raw;
}

export function checkProviderFits(provider: ProviderTypeName, model: ModelTypeName): void {
  const allowed = PROVIDERS_BY_MODEL_TYPE[model];
  if (!allowed.includes(provider)) {
    throw new FieldError(`cannot be '${provider}' for a ${model} model; use ${allowed.join(" or ")}`);
  }
}

/** Runs a check for an RPC field, turning its FieldError into InvalidArgument naming the field. */
export function field<T>(param: string, check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof FieldError) {
      const path = param + err.sub;
      throw invalidArgument(`'${path}' ${err.message}.`, path);
    }
    throw err;
  }
}

export { principalOf };

/** Administrators manage the registry; the `admin` permission is also what lets a role use every model. */
export function isAdmin(p: Principal): boolean {
  return p.permissions.has("admin");
}

export function admin(ctx: HandlerContext): Principal {
  const p = principalOf(ctx);
  if (!isAdmin(p)) throw permissionDenied("This operation needs the 'admin' permission.");
  return p;
}

/** The id of the resource a call is about: a malformed id cannot exist, so the lookup answers NotFound. */
export function lookupId(id: string): string | undefined {
  return isUuid(id) ? id : undefined;
}
