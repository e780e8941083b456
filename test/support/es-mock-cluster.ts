import { createRequire } from "node:module";
import type { Client } from "@elastic/elasticsearch";
import type { MockPattern } from "@elastic/elasticsearch-mock";

/**
 * Test support: an `@elastic/elasticsearch` client wired to `@elastic/elasticsearch-mock`, recording every request.
 * The mock is CommonJS and extends the client's CJS build, so the client here is the CJS build too (`require`): one
 * consistent set of classes, as in production where the ESM client uses its own ESM transport and connection. The
 * errors a resolver returns must be the CJS build's, the ones the mock recognises.
 */
const require = createRequire(import.meta.url);
const Mock: typeof import("@elastic/elasticsearch-mock")["default"] = require("@elastic/elasticsearch-mock");
type ClientCjs = typeof import("@elastic/elasticsearch", { with: { "resolution-mode": "require" }});
const cjs: ClientCjs = require("@elastic/elasticsearch");

export interface RecordedRequest {
  method: string;
  path: string;
  querystring: Record<string, string>;
  /** JSON body parsed; ndjson (bulk) as an array of its lines. */
  body: unknown;
}

export function mockCluster() {
  const mock = new Mock();
  // No retries: the transport would otherwise retry 502/503/504 and connection errors three times.
  const client = new cjs.Client({ node: "http://localhost:9200", Connection: mock.getConnection(), maxRetries: 0 });
  const requests: RecordedRequest[] = [];
  const on = (method: string, path: string, respond: (req: RecordedRequest) => unknown) => {
    mock.add({ method, path }, (params: MockPattern) => {
      const req = { ...params, method: String(params.method), path: String(params.path) } as RecordedRequest;
      requests.push(req);
      return respond(req) as Record<string, unknown>;
    });
  };
  // Same API, other build: the ESM `Client` type differs only nominally.
  return { client: client as unknown as Client, requests, on };
}

/** What Elasticsearch answers with an error status. */
export function errorResponse(statusCode: number, type: string, reason: string) {
  const body = { error: { root_cause: [{ type, reason }], type, reason }, status: statusCode };
  return new cjs.errors.ResponseError({ body, statusCode, headers: {}, warnings: null, meta: {} as never });
}

/** The client's error when no node could be reached. */
export const connectionError = () => new cjs.errors.ConnectionError("connect ECONNREFUSED 127.0.0.1:9200");
