import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../services/config.js";
import {
  bearer,
  connectClient,
  createRole,
  createUser,
  expectOpenAIError,
  rest,
  type TestUser,
} from "../support/accounts.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { type Simulator, startSimulator } from "../upstream/simulator.js";

/** Samples of a Prometheus text exposition, `name{a="x",b="y"}` (labels sorted) → value; throws on a bad line. */
function parsePrometheus(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line) continue;
    if (line.startsWith("#")) {
      expect(line).toMatch(/^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* /);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels = [...(m[2] ?? "").matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)]
      .map(([, k, v]) => `${k}="${v}"`)
      .sort();
    // Go's ParseFloat, which Prometheus uses, takes NaN and Inf in any case (prom-client writes "Nan").
    const raw = m[3] as string;
    const value = /^[+-]?inf$/i.test(raw) ? (raw.startsWith("-") ? -1 : 1) * Number.POSITIVE_INFINITY : Number(raw);
    if (Number.isNaN(value) && !/^nan$/i.test(raw)) throw new Error(`not a Prometheus value: ${line}`);
    out.set(`${m[1]}{${labels.join(",")}}`, value);
  }
  return out;
}

const sample = (name: string, labels: Record<string, string> = {}) =>
  `${name}{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(",")}}`;

const httpCount = (s: Map<string, number>, method: string, route: string, status: string) =>
  s.get(sample("passerelle_http_requests_total", { method, route, status })) ?? 0;

describe("GET /metrics", () => {
  let t: TestPlatform;
  let sim: Simulator;
  let dir: string;
  let reader: TestUser;
  let plain: TestUser;

  beforeAll(async () => {
    sim = await startSimulator({ completionTokens: 5 });
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-metrics-"));
    const file = path.join(dir, "models.yaml");
    await fs.writeFile(
      file,
      `models:\n  - name: metrics-chat\n    type: text-generation\n    providers:\n      - { type: vllm, url: "${sim.url}", model_name: sim-chat, timeout_s: 30 }\n`,
    );
    t = await startTestPlatform({ env: { PASSERELLE_MODELS_FILE: file, PASSERELLE_METRICS_PORT: "0" } });
    reader = await createUser(t, { role: (await createRole(t, ["read_metrics"])).id });
    plain = await createUser(t, { role: (await createRole(t, [])).id });
  });
  afterAll(async () => {
    await t?.close();
    await sim?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  const scrape = async (key = t.adminKey) => {
    const res = await fetch(`${t.httpUrl}/metrics`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    return parsePrometheus(await res.text());
  };

  it("needs a key: 401 without one or with a bad one, in OpenAI's error shape", async () => {
    const none = await rest(t, "GET", "/metrics");
    expectOpenAIError(none, 401, "invalid_request_error");
    expect(none.body.error.code).toBe("missing_api_key");
    const bad = await rest(t, "GET", "/metrics", { key: "sk-not-a-real-key-0123456789abcdef" });
    expectOpenAIError(bad, 401, "invalid_request_error");
    expect(bad.body.error.code).toBe("invalid_api_key");
    const malformed = await rest(t, "GET", "/metrics", { authorization: "Basic abc" });
    expectOpenAIError(malformed, 401, "invalid_request_error");
  });

  it("needs the read_metrics or admin permission: 403 otherwise", async () => {
    const res = await rest(t, "GET", "/metrics", { key: plain.key });
    expectOpenAIError(res, 403, "permission_error");
    expect(res.body.error.code).toBe("permission_denied");
    const s = await scrape(reader.key);
    expect(s.get(sample("passerelle_usage_buffer_depth"))).toBe(0);
    expect(s.get(sample("passerelle_budget_leases"))).toBe(0);
    expect([...s.keys()].some((k) => k.startsWith("process_resident_memory_bytes"))).toBe(true);
  });

  it("counts REST, Connect and unmatched requests by route pattern", async () => {
    const before = await scrape();
    expect((await rest(t, "GET", "/v1/models", { key: reader.key })).status).toBe(200);
    expect((await rest(t, "GET", "/v1/models/metrics-chat", { key: t.adminKey })).status).toBe(200);
    await connectClient(t).getMe({}, bearer(reader.key));
    expect((await rest(t, "GET", "/no/such/route")).status).toBe(404);
    const after = await scrape();
    const delta = (method: string, route: string, status: string) =>
      httpCount(after, method, route, status) - httpCount(before, method, route, status);
    expect(delta("GET", "/v1/models", "200")).toBe(1);
    expect(delta("GET", "/v1/models/:model", "200")).toBe(1);
    expect(delta("POST", "/passerelle.accounts.v1.AccountService/GetMe", "200")).toBe(1);
    expect(delta("GET", "unmatched", "404")).toBe(1);
    // The first scrape is counted too, by the time of the second.
    expect(delta("GET", "/metrics", "200")).toBe(1);
    expect(
      after.get(sample("passerelle_http_request_duration_seconds_count", { method: "GET", route: "/v1/models" })),
    ).toBeGreaterThanOrEqual(1);
  });

  it("counts streamed (hijacked) chat completions and shows the provider gauges", async () => {
    const before = await scrape();
    const res = await fetch(`${t.httpUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "metrics-chat", messages: [{ role: "user", content: "Salut" }], stream: true }),
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("data: [DONE]");
    const after = await scrape();
    const route = "/v1/chat/completions";
    expect(httpCount(after, "POST", route, "200") - httpCount(before, "POST", route, "200")).toBe(1);
    const inFlight = [...after.entries()].filter(([k]) => k.startsWith("passerelle_provider_in_flight{provider="));
    expect(inFlight).toHaveLength(1);
    expect(inFlight[0]?.[1]).toBe(0);
    const healthy = [...after.entries()].filter(([k]) => k.startsWith("passerelle_provider_healthy{provider="));
    expect(healthy.map(([, v]) => v)).toEqual([1]);
  });

  it("records what the inference path reports through core.metrics", async () => {
    t.platform.core.metrics.inference.record({
      model: "metrics-chat",
      endpoint: "chat.completions",
      status: "ok",
      seconds: 0.3,
      ttftSeconds: 0.05,
      promptTokens: 3,
      completionTokens: 5,
    });
    t.platform.core.metrics.limiter.decision("refused");
    const s = await scrape();
    expect(
      s.get(
        sample("passerelle_inference_requests_total", {
          model: "metrics-chat",
          endpoint: "chat.completions",
          status: "ok",
        }),
      ),
    ).toBeGreaterThanOrEqual(1);
    expect(s.get(sample("passerelle_limiter_decisions_total", { outcome: "refused" }))).toBeGreaterThanOrEqual(1);
  });

  it("serves /metrics without auth on the separate listener, and nothing else there", async () => {
    expect(t.platform.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${t.platform.metricsUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const s = parsePrometheus(await res.text());
    expect(httpCount(s, "GET", "/metrics", "200")).toBeGreaterThanOrEqual(1);
    expect((await fetch(`${t.platform.metricsUrl}/v1/models`)).status).toBe(404);
  });

  it("shows every registered provider in the gauges, and drops a deleted one at the next scrape", async () => {
    const gauges = (s: Map<string, number>) =>
      [...s.keys()]
        .filter((k) => k.startsWith("passerelle_provider_healthy{provider="))
        .map((k) => /provider="([^"]+)"/.exec(k)?.[1]);
    const models = await rest(t, "GET", "/v1/admin/models", { key: t.adminKey });
    const chat = (models.body.data as { id: string; name: string }[]).find((m) => m.name === "metrics-chat");
    const second = await startSimulator({ completionTokens: 5 });
    const added = await rest(t, "POST", "/v1/admin/providers", {
      key: t.adminKey,
      body: { model: chat?.id, type: "vllm", url: second.url, model_name: "sim-chat", timeout_s: 30 },
    }).finally(() => second.close());
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    const id = added.body.id as string;
    // Never routed to yet: healthy and idle, listed all the same (a dashboard sees it from its registration).
    const s = await scrape();
    expect(gauges(s)).toContain(id);
    expect(s.get(sample("passerelle_provider_healthy", { provider: id }))).toBe(1);
    expect(s.get(sample("passerelle_provider_in_flight", { provider: id }))).toBe(0);
    expect((await rest(t, "DELETE", `/v1/admin/providers/${id}`, { key: t.adminKey })).status).toBe(200);
    const after = await scrape();
    expect(gauges(after)).not.toContain(id);
    expect(gauges(after)).toHaveLength(1);
  });
});

describe("metrics settings", () => {
  it("has no separate listener unless PASSERELLE_METRICS_PORT is set; binds 127.0.0.1 by default", () => {
    expect(loadConfig({}).metrics).toEqual({ port: undefined, host: "127.0.0.1" });
    expect(loadConfig({ PASSERELLE_METRICS_PORT: "9464", PASSERELLE_METRICS_HOST: "0.0.0.0" }).metrics).toEqual({
      port: 9464,
      host: "0.0.0.0",
    });
    expect(() => loadConfig({ PASSERELLE_METRICS_PORT: "70000" })).toThrow(ConfigError);
  });
});
