import http from "node:http";
import type { AddressInfo } from "node:net";

/**
 * Tiny ad-hoc upstreams for the model registry's probe (the vLLM simulator of test/upstream/ serves inference
 * tests): `GET /v1/models` in vLLM's shape, `GET /info` in TEI's, `POST /v1/embeddings` returning one vector.
 * Settings can change while the server runs (`set`), and every request is recorded (method, path, authorization).
 */

export interface FakeUpstreamSettings {
  /** vLLM/OpenAI model list: ids and their `max_model_len` (omitted when undefined). */
  models: Array<{ id: string; max_model_len?: number }>;
  /** TEI `/info`; 404 when undefined. */
  info?: { model_id: string; max_input_length: number };
  /** Length of the vector `/v1/embeddings` returns; 404 when undefined. */
  dims?: number;
  /** When set, requests without `Authorization: Bearer <key>` get 401. */
  key?: string;
  /** Forces every answer to this status (e.g. 500). */
  status?: number;
  /** Delays every answer (ms). */
  delayMs?: number;
}

export interface FakeUpstream {
  url: string;
  requests: Array<{ method: string; path: string; authorization: string | undefined; body: string }>;
  set(patch: Partial<FakeUpstreamSettings>): void;
  close(): Promise<void>;
}

export async function startFakeUpstream(initial: Partial<FakeUpstreamSettings> = {}): Promise<FakeUpstream> {
  let s: FakeUpstreamSettings = { models: [], ...initial };
  const requests: FakeUpstream["requests"] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => {
      body += c.toString("utf8");
    });
    req.on("end", () => {
      requests.push({ method: req.method ?? "", path: req.url ?? "", authorization: req.headers.authorization, body });
      const send = (status: number, json: unknown) => {
        const write = () => {
          res.writeHead(status, { "content-type": "application/json" });
          res.end(JSON.stringify(json));
        };
        if (s.delayMs) setTimeout(write, s.delayMs);
        else write();
      };
      if (s.status) return send(s.status, { error: { message: "forced failure" } });
      if (s.key && req.headers.authorization !== `Bearer ${s.key}`) {
        return send(401, { error: { message: "invalid key", type: "invalid_request_error" } });
      }
      if (req.method === "GET" && req.url === "/v1/models") {
        return send(200, {
          object: "list",
          data: s.models.map((m) => ({
            id: m.id,
            object: "model",
            created: 1_700_000_000,
            owned_by: "vllm",
            root: m.id,
            ...(m.max_model_len === undefined ? {} : { max_model_len: m.max_model_len }),
          })),
        });
      }
      if (req.method === "GET" && req.url === "/info" && s.info) return send(200, s.info);
      const dims = s.dims;
      if (req.method === "POST" && req.url === "/v1/embeddings" && dims) {
        const model = (JSON.parse(body || "{}") as { model?: string }).model;
        return send(200, {
          object: "list",
          model,
          data: [{ object: "embedding", index: 0, embedding: Array.from({ length: dims }, (_, i) => i / dims) }],
          usage: { prompt_tokens: 1, total_tokens: 1 },
        });
      }
      return send(404, { error: { message: "not found" } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    set(patch) {
      s = { ...s, ...patch };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A URL on which nothing listens (a port just released). */
export async function deadUrl(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}
