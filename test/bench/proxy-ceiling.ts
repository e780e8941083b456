import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Pool } from "undici";

/**
 * The bench's ceiling: the least a Node proxy can do on this machine. A raw node:http server that forwards
 * `POST /v1/chat/completions` to one upstream over a keep-alive undici Pool (TCP_NODELAY both sides) and pipes the
 * answer back byte for byte, streams included (undici's `stream()`: each body chunk is written to the client as
 * it arrives, with backpressure; a client that goes away aborts the upstream request). No auth, no parsing, no
 * routing, no logging: whatever Passerelle costs above this is the price of what it does.
 */

/** Hop-by-hop headers (RFC 9110 §7.6.1) and `host`: never forwarded by a proxy. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "host",
]);

function forwardable(h: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const key in h) {
    const v = h[key];
    if (v !== undefined && !HOP_BY_HOP.has(key)) out[key] = v;
  }
  return out;
}

export interface CeilingProxy {
  url: string;
  close(): Promise<void>;
}

export async function startCeilingProxy(upstream: string, opts: { connections?: number } = {}): Promise<CeilingProxy> {
  const pool = new Pool(upstream, {
    connections: opts.connections ?? 1024,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    connect: { noDelay: true },
  });
  const server = createServer({ keepAlive: true, noDelay: true, requestTimeout: 0 }, (req, res) => {
    if (req.method !== "POST" || req.url !== "/v1/chat/completions") {
      res.writeHead(404, { "content-length": 0 }).end();
      return;
    }
    pool.stream(
      { method: "POST", path: req.url, headers: forwardable(req.headers), body: req, opaque: res },
      ({ statusCode, headers, opaque }) => {
        const out = opaque as ServerResponse;
        out.writeHead(statusCode, forwardable(headers as IncomingHttpHeaders));
        return out;
      },
      (err) => {
        if (!err) return;
        if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" }).end(String(err.message));
        else res.destroy(err);
      },
    );
  });
  server.keepAliveTimeout = 75_000;
  server.headersTimeout = 76_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await pool.close();
    },
  };
}
