import fs from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { bridgePlugin } from "../../bridge/app.js";
import { type CoreConfig, loadConfig } from "../../services/config.js";
import { createLogger } from "../../services/platform/logging.js";
import { type Platform, startPlatform } from "../../services/server.js";
import { SseReader } from "../upstream/sse.js";

/**
 * Helpers for the end-to-end governance tests (limits, budgets, usage durability): plain fetch against a base URL
 * (in-process platforms and child processes alike), the admin calls they need, SSE reading with an optional abort,
 * and an in-process platform on a database and data directory chosen by the test (to restart on the same ones).
 */

// biome-ignore lint/suspicious/noExplicitAny: JSON bodies are checked by the assertions, not by types
export type Json = any;

export interface Reply {
  status: number;
  body: Json;
  headers: Headers;
}

/** One JSON call; `key` becomes `Authorization: Bearer <key>`. */
export async function call(
  base: string,
  method: string,
  route: string,
  opts: { key?: string; body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${base}${route}`, {
    method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    signal: opts.signal,
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON (CSV, Prometheus text): keep the text
  }
  return { status: res.status, body, headers: res.headers };
}

/** Like `call`, but fails with the answer unless the status is `expected`. */
export async function ok(base: string, method: string, route: string, key: string, body?: unknown, expected = 0) {
  const res = await call(base, method, route, { key, body });
  const good = expected ? res.status === expected : res.status >= 200 && res.status < 300;
  if (!good) throw new Error(`${method} ${route} → ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as Json;
}

export interface ModelSpec {
  name: string;
  type: "text-generation" | "text-embeddings-inference";
  /** Upstream base URLs (simulators). */
  urls: string[];
  /** The simulator's model: `sim-chat` or `sim-embed`. */
  upstreamModel: string;
  /** Per 1M tokens. */
  costs?: { prompt_tokens: number; completion_tokens: number };
}

/** Writes a PASSERELLE_MODELS_FILE listing `models` into `dir`; returns its path. */
export async function writeModelsFile(dir: string, models: ModelSpec[]): Promise<string> {
  const lines = ["models:"];
  for (const m of models) {
    lines.push(`  - name: ${m.name}`, `    type: ${m.type}`);
    if (m.costs) {
      lines.push(
        `    costs: { prompt_tokens: ${m.costs.prompt_tokens}, completion_tokens: ${m.costs.completion_tokens} }`,
      );
    }
    lines.push("    providers:");
    for (const url of m.urls) {
      lines.push(
        `      - { type: vllm, url: "${url}", model_name: ${m.upstreamModel}, timeout_s: 30, max_concurrency: 512 }`,
      );
    }
  }
  const file = path.join(dir, "models.yaml");
  await fs.writeFile(file, `${lines.join("\n")}\n`);
  return file;
}

export interface Limits {
  requests_per_minute?: number | null;
  requests_per_day?: number | null;
  tokens_per_minute?: number | null;
  tokens_per_day?: number | null;
}

/** The id of the model named `name` (admin API). */
export async function modelId(base: string, adminKey: string, name: string): Promise<string> {
  const list = await ok(base, "GET", `/v1/admin/models?name=${encodeURIComponent(name)}`, adminKey);
  const id = (list.data as { id: string; name: string }[]).find((m) => m.name === name)?.id;
  if (!id) throw new Error(`model ${name} is not registered`);
  return id;
}

/** Grants `model` (by name) to the role with `limits` (POST /v1/admin/roles/{id}/models/{model}); returns the grant. */
export async function grant(base: string, adminKey: string, roleId: string, model: string, limits: Limits = {}) {
  const id = await modelId(base, adminKey, model);
  return ok(base, "POST", `/v1/admin/roles/${roleId}/models/${id}`, adminKey, limits);
}

export interface Member {
  id: string;
  /** The user's API keys (at least one). */
  keys: string[];
}

let serial = 0;
const unique = (prefix: string) => `${prefix}-${process.pid}-${Date.now().toString(36)}-${++serial}`;

/** A role (no permission) granted each model of `grants` with its limits. */
export async function createRole(base: string, adminKey: string, grants: Record<string, Limits> = {}) {
  const role = await ok(base, "POST", "/v1/admin/roles", adminKey, { name: unique("role"), permissions: [] });
  for (const [model, limits] of Object.entries(grants)) await grant(base, adminKey, role.id, model, limits);
  return role.id as string;
}

/** A user of `roleId` with `keys` API keys (admin API). */
export async function createMember(
  base: string,
  adminKey: string,
  roleId: string,
  opts: { keys?: number; organization?: string } = {},
): Promise<Member> {
  const user = await ok(base, "POST", "/v1/admin/users", adminKey, {
    email: `${unique("user")}@governance.test`,
    role: roleId,
    organization: opts.organization ?? null,
  });
  const keys: string[] = [];
  for (let i = 0; i < (opts.keys ?? 1); i++) {
    const key = await ok(base, "POST", "/v1/admin/keys", adminKey, { user: user.id, name: `key-${i}` });
    keys.push(key.key as string);
  }
  return { id: user.id, keys };
}

export interface StreamResult {
  status: number;
  headers: Headers;
  /** The error body when the status is not 200. */
  error?: Json;
  /** Parsed `data:` chunks (an in-stream error included), without `[DONE]`. */
  chunks: Json[];
  /** The usage chunk's usage, when there was one. */
  usage?: Json;
  /** The stream ended with `data: [DONE]`. */
  done: boolean;
  /** The client aborted the stream after `abortAfterChunks` chunks. */
  aborted: boolean;
}

/**
 * A streamed chat completion read to its end (or aborted by the client after `abortAfterChunks` data chunks).
 * `include_usage` is asked for unless the body says otherwise. `onHeaders` is called once the status is known (for
 * a 200, once the first chunk was sent: the request is being served).
 */
export async function streamChat(
  base: string,
  key: string,
  body: Record<string, unknown>,
  opts: { requestId?: string; abortAfterChunks?: number; onHeaders?: (status: number) => void } = {},
): Promise<StreamResult> {
  const ac = new AbortController();
  const headers: Record<string, string> = { authorization: `Bearer ${key}`, "content-type": "application/json" };
  if (opts.requestId) headers["x-request-id"] = opts.requestId;
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers,
    body: JSON.stringify({ stream: true, stream_options: { include_usage: true }, ...body }),
    signal: ac.signal,
  });
  opts.onHeaders?.(res.status);
  const result: StreamResult = { status: res.status, headers: res.headers, chunks: [], done: false, aborted: false };
  if (res.status !== 200 || !res.body) {
    const text = await res.text();
    result.error = text ? JSON.parse(text) : undefined;
    return result;
  }
  const reader = new SseReader(res);
  try {
    for (;;) {
      const data = await reader.nextData();
      if (data === null) break;
      if (data === "[DONE]") {
        result.done = true;
        continue;
      }
      const chunk = JSON.parse(data);
      result.chunks.push(chunk);
      if (chunk.usage) result.usage = chunk.usage;
      if (opts.abortAfterChunks !== undefined && result.chunks.length >= opts.abortAfterChunks) {
        result.aborted = true;
        ac.abort();
        await reader.cancel();
        break;
      }
    }
  } catch (err) {
    if (!result.aborted) throw err;
  }
  return result;
}

/** Polls `check` every 50 ms until it returns true; fails with `what` after `timeoutMs`. */
export async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(50);
  }
}

/** `/metrics` samples as `name{label="v",…}` (labels as written) → value. */
export async function scrapeMetrics(base: string, key: string): Promise<Map<string, number>> {
  const res = await call(base, "GET", "/metrics", { key });
  if (res.status !== 200) throw new Error(`GET /metrics → ${res.status} ${JSON.stringify(res.body)}`);
  const out = new Map<string, number>();
  for (const line of String(res.body).split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/** Runs `task(0…count-1)` with at most `limit` in flight. */
export async function bounded<T>(count: number, limit: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      out[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
  return out;
}

export interface PlatformOn {
  platform: Platform;
  httpUrl: string;
  close(): Promise<void>;
}

/**
 * The whole platform in this process on `databaseUrl` and `dataDir` as given (neither is created nor removed: the
 * test owns them, so that it can restart a platform on the same ones), real sockets on ports picked by the OS.
 */
export async function startPlatformOn(opts: {
  databaseUrl: string;
  dataDir: string;
  adminKey: string;
  redisUrl?: string;
  env?: Record<string, string>;
  overrides?: Partial<CoreConfig>;
}): Promise<PlatformOn> {
  const config = loadConfig(
    {
      PASSERELLE_HTTP_HOST: "127.0.0.1",
      PASSERELLE_HTTP_PORT: "0",
      PASSERELLE_GRPC_PORT: "0",
      PASSERELLE_DATA_DIR: opts.dataDir,
      DATABASE_URL: opts.databaseUrl,
      ...(opts.redisUrl ? { REDIS_URL: opts.redisUrl } : {}),
      PASSERELLE_BOOTSTRAP_ADMIN_KEY: opts.adminKey,
      PASSERELLE_SHUTDOWN_GRACE_MS: "5000",
      ...opts.env,
    },
    opts.overrides,
  );
  const logger = createLogger(process.env.PASSERELLE_TEST_LOG ?? "silent");
  const platform = await startPlatform(config, logger, { restApi: bridgePlugin });
  return { platform, httpUrl: platform.httpUrl, close: () => platform.close() };
}
