import type { AddressInfo } from "node:net";
import Fastify from "fastify";
import { describe, expect, it } from "vitest";
import { createMetrics } from "./metrics.js";

/** Samples of a Prometheus text exposition: `name{a="x",b="y"}` → value (labels sorted by name). */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels = [...(m[2] ?? "").matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)]
      .map(([, k, v]) => `${k}="${v}"`)
      .sort();
    out.set(`${m[1]}{${labels.join(",")}}`, Number(m[3]));
  }
  return out;
}

const key = (name: string, labels: Record<string, string> = {}) =>
  `${name}{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(",")}}`;

describe("metrics", () => {
  it("exposes every instrument with its labels after recording", async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.inference.record({
      model: "qwen2.5-7b",
      endpoint: "chat.completions",
      status: "ok",
      seconds: 1.5,
      ttftSeconds: 0.2,
      promptTokens: 11,
      completionTokens: 7,
    });
    m.inference.record({ model: "qwen2.5-7b", endpoint: "chat.completions", status: "ok", seconds: 0.5 });
    m.inference.record({ model: "bge-m3", endpoint: "embeddings", status: "unavailable", seconds: 0.1 });
    m.limiter.decision("allowed");
    m.limiter.decision("allowed");
    m.limiter.decision("degraded_open");
    m.usage.recorded(3);
    m.usage.flushFailure();
    m.usage.setDepthSource(() => 42);
    m.usage.setLeaseSource(() => 3);
    m.setProviderSnapshot(() => [
      { id: "p1", inFlight: 4, healthy: true },
      { id: "p2", inFlight: 0, healthy: false },
    ]);
    m.http.observe("GET", "/v1/models/*", "200", 0.01);

    const text = await m.text();
    expect(m.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const s = samples(text);
    const chat = { model: "qwen2.5-7b", endpoint: "chat.completions" };
    expect(s.get(key("passerelle_inference_requests_total", { ...chat, status: "ok" }))).toBe(2);
    expect(
      s.get(
        key("passerelle_inference_requests_total", { model: "bge-m3", endpoint: "embeddings", status: "unavailable" }),
      ),
    ).toBe(1);
    expect(s.get(key("passerelle_inference_duration_seconds_count", chat))).toBe(2);
    expect(s.get(key("passerelle_inference_duration_seconds_sum", chat))).toBe(2);
    expect(s.get(key("passerelle_inference_duration_seconds_bucket", { ...chat, le: "1" }))).toBe(1);
    expect(s.get(key("passerelle_inference_time_to_first_token_seconds_count", { model: "qwen2.5-7b" }))).toBe(1);
    expect(s.get(key("passerelle_inference_tokens_total", { model: "qwen2.5-7b", kind: "prompt" }))).toBe(11);
    expect(s.get(key("passerelle_inference_tokens_total", { model: "qwen2.5-7b", kind: "completion" }))).toBe(7);
    expect(s.get(key("passerelle_limiter_decisions_total", { outcome: "allowed" }))).toBe(2);
    expect(s.get(key("passerelle_limiter_decisions_total", { outcome: "degraded_open" }))).toBe(1);
    // Every outcome is exposed from the start (at 0), so rate() works from the first decision.
    expect(s.get(key("passerelle_limiter_decisions_total", { outcome: "refused" }))).toBe(0);
    expect(s.get(key("passerelle_usage_records_total"))).toBe(3);
    expect(s.get(key("passerelle_usage_flush_failures_total"))).toBe(1);
    expect(s.get(key("passerelle_usage_buffer_depth"))).toBe(42);
    expect(s.get(key("passerelle_budget_leases"))).toBe(3);
    expect(s.get(key("passerelle_provider_in_flight", { provider: "p1" }))).toBe(4);
    expect(s.get(key("passerelle_provider_healthy", { provider: "p1" }))).toBe(1);
    expect(s.get(key("passerelle_provider_healthy", { provider: "p2" }))).toBe(0);
    expect(s.get(key("passerelle_http_requests_total", { method: "GET", route: "/v1/models/*", status: "200" }))).toBe(
      1,
    );
    expect(s.get(key("passerelle_http_request_duration_seconds_count", { method: "GET", route: "/v1/models/*" }))).toBe(
      1,
    );
    expect(text).toContain("# TYPE passerelle_http_request_duration_seconds histogram");
    expect(text).toContain("# TYPE passerelle_provider_in_flight gauge");
  });

  it("reads the provider gauges at each scrape: a provider that is gone disappears", async () => {
    const m = createMetrics({ defaultMetrics: false });
    let providers = [{ id: "p1", inFlight: 1, healthy: true }];
    m.setProviderSnapshot(() => providers);
    expect(samples(await m.text()).get(key("passerelle_provider_in_flight", { provider: "p1" }))).toBe(1);
    providers = [{ id: "p2", inFlight: 2, healthy: true }];
    const s = samples(await m.text());
    expect(s.has(key("passerelle_provider_in_flight", { provider: "p1" }))).toBe(false);
    expect(s.get(key("passerelle_provider_in_flight", { provider: "p2" }))).toBe(2);
  });

  it("reads an asynchronous provider source once per scrape, and shows none when it fails", async () => {
    const m = createMetrics({ defaultMetrics: false });
    let reads = 0;
    let fail = false;
    m.setProviderSnapshot(async () => {
      reads++;
      await new Promise((r) => setTimeout(r, 5));
      if (fail) throw new Error("registry unreachable");
      return [{ id: "p1", inFlight: 3, healthy: false }];
    });
    const s = samples(await m.text());
    expect(reads).toBe(1);
    expect(s.get(key("passerelle_provider_in_flight", { provider: "p1" }))).toBe(3);
    expect(s.get(key("passerelle_provider_healthy", { provider: "p1" }))).toBe(0);
    fail = true;
    const failed = samples(await m.text());
    expect(reads).toBe(2);
    expect(failed.has(key("passerelle_provider_in_flight", { provider: "p1" }))).toBe(false);
    expect(failed.has(key("passerelle_provider_healthy", { provider: "p1" }))).toBe(false);
  });

  it("keeps scraping when a registered source throws", async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.usage.setDepthSource(() => {
      throw new Error("buffer gone");
    });
    m.setProviderSnapshot(() => {
      throw new Error("router gone");
    });
    expect(samples(await m.text()).get(key("passerelle_usage_buffer_depth"))).toBe(0);
  });

  it("bounds the model label: models beyond the cap are counted as other", async () => {
    const m = createMetrics({ defaultMetrics: false, maxModels: 2 });
    for (const model of ["a", "b", "c", "d", "a"]) {
      m.inference.record({ model, endpoint: "embeddings", status: "ok", seconds: 0.01 });
    }
    const s = samples(await m.text());
    const count = (model: string) =>
      s.get(key("passerelle_inference_requests_total", { model, endpoint: "embeddings", status: "ok" }));
    expect([count("a"), count("b"), count("other"), count("c")]).toEqual([2, 1, 2, undefined]);
  });

  it("gives each instance a registry of its own, default process metrics included", async () => {
    const a = createMetrics();
    const b = createMetrics();
    a.limiter.decision("refused");
    const sa = samples(await a.text());
    const sb = samples(await b.text());
    expect(sa.get(key("passerelle_limiter_decisions_total", { outcome: "refused" }))).toBe(1);
    expect(sb.get(key("passerelle_limiter_decisions_total", { outcome: "refused" }))).toBe(0);
    expect([...sa.keys()].some((k) => k.startsWith("process_cpu_user_seconds_total"))).toBe(true);
    expect([...sb.keys()].some((k) => k.startsWith("nodejs_eventloop_lag_seconds"))).toBe(true);
  });

  it("counts Fastify requests by route pattern, unmatched ones, and replies the client left as 499", async () => {
    const m = createMetrics({ defaultMetrics: false });
    const app = Fastify({ forceCloseConnections: true });
    m.http.instrument(app);
    let left!: () => void;
    const clientLeft = new Promise<void>((resolve) => {
      left = resolve;
    });
    app.get("/v1/models/*", async () => ({ ok: true }));
    app.get("/slow", async (_req, reply) => {
      reply.raw.once("close", () => left());
      await clientLeft;
      return "late";
    });
    app.post("/stream", async (_req, reply) => {
      reply.hijack();
      reply.raw.writeHead(200, { "content-type": "text/event-stream" });
      reply.raw.end("data: [DONE]\n\n");
    });
    await app.listen({ host: "127.0.0.1", port: 0 });
    try {
      const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      const status = async (path: string, method = "GET") => {
        const res = await fetch(`${base}${path}`, { method });
        await res.text();
        return res.status;
      };
      expect(await status("/v1/models/a/b")).toBe(200);
      expect(await status("/v1/models/c")).toBe(200);
      expect(await status("/nowhere")).toBe(404);
      expect(await status("/stream", "POST")).toBe(200);
      const ac = new AbortController();
      const slow = fetch(`${base}/slow`, { signal: ac.signal }).catch(() => "aborted");
      await new Promise((r) => setTimeout(r, 50));
      ac.abort();
      expect(await slow).toBe("aborted");
      await clientLeft;
      await new Promise((r) => setTimeout(r, 20));

      const s = samples(await m.text());
      const count = (method: string, route: string, status: string) =>
        s.get(key("passerelle_http_requests_total", { method, route, status }));
      expect(count("GET", "/v1/models/*", "200")).toBe(2);
      expect(count("GET", "unmatched", "404")).toBe(1);
      expect(count("POST", "/stream", "200")).toBe(1);
      expect(count("GET", "/slow", "499")).toBe(1);
      const total = [...s.entries()]
        .filter(([k]) => k.startsWith("passerelle_http_requests_total{"))
        .reduce((a, [, v]) => a + v, 0);
      expect(total).toBe(5);
    } finally {
      await app.close();
    }
  });
});
