import type { Http2Server, Http2Session } from "node:http2";
import type { AddressInfo } from "node:net";
import type { Transport } from "@connectrpc/connect";
import { Code, ConnectError, cors as connectCors, createContextValues } from "@connectrpc/connect";
import { fastifyConnectPlugin } from "@connectrpc/connect-fastify";
import fastifyCors from "@fastify/cors";
import Fastify, { type FastifyInstance, type FastifyPluginAsync, LogController } from "fastify";
import type { Logger } from "pino";
import { ErrorInfoSchema } from "../gen/passerelle/errors/v1/error_info_pb.js";
import type { CoreConfig } from "./config.js";
import { type Core, createCore } from "./core.js";
import { RATE_LIMIT_HEADERS } from "./governance/index.js";
import { kRequestId } from "./platform/context.js";
import { createInProcessTransport } from "./platform/in-process-transport.js";
import { requestIdFrom } from "./platform/interceptors.js";

export interface Platform {
  readonly core: Core;
  /** http://host:port of the HTTP/1.1 listener (REST, Connect, gRPC-web). */
  readonly httpUrl: string;
  /** http://host:port of the h2c listener (gRPC, Connect). */
  readonly grpcUrl: string;
  /** http://host:port of the unauthenticated metrics listener, when PASSERELLE_METRICS_PORT is set. */
  readonly metricsUrl: string | undefined;
  /** Stops accepting, drains in-flight requests and streams up to the grace period, then closes everything. */
  close(): Promise<void>;
}

/**
 * The one-process platform: the core's Connect services on an HTTP/1.1 listener (Connect + gRPC-web, CORS for
 * browsers) and an h2c listener (gRPC), plus the REST bridge on the HTTP/1.1 listener, reaching the services
 * through an in-process Transport (same implementations and interceptors as a remote call, no serialization).
 *
 * The REST API is handed in (`restApi`, the bridge plugin) by the composition root, services/main.ts: this file
 * knows no bridge code, and the bridge only ever sees a Transport.
 *
 * Metrics: `GET /metrics` (Prometheus text) on the HTTP/1.1 listener for keys whose role has `read_metrics` or
 * `admin`, and, when `config.metrics.port` is set, on a listener of its own without auth (bind it to an address
 * only the scrapers reach). Every request of both main listeners is counted by route pattern.
 */
export async function startPlatform(
  config: CoreConfig,
  logger: Logger,
  opts: { restApi?: FastifyPluginAsync<{ transport: Transport; maxFileBytes?: number }> } = {},
): Promise<Platform> {
  const core = await createCore(config, logger);
  const common = {
    loggerInstance: logger,
    genReqId: (req: { headers: Record<string, string | string[] | undefined> }) =>
      requestIdFrom(typeof req.headers["x-request-id"] === "string" ? req.headers["x-request-id"] : undefined),
    bodyLimit: config.bodyLimitBytes,
    // The RPC interceptor logs each call once; Fastify's own per-request lines only at debug.
    logController: new LogController({ disableRequestLogging: logger.level !== "debug" && logger.level !== "trace" }),
    // A request that reaches a busy kept-alive connection during the drain is served, not refused with Fastify's
    // own 503 body (no OpenAI or Connect client reads its shape): the services stay up until the listeners have
    // drained, and Fastify still answers it with `connection: close`, so the client's next request goes elsewhere.
    return503OnClosing: false,
  };

  const http = Fastify({ ...common, forceCloseConnections: "idle" }) as unknown as FastifyInstance;
  // First, so that its onResponse hook runs before any other (see platform/metrics.ts).
  core.metrics.http.instrument(http);
  const allowedOrigins = config.corsOrigins.includes("*") ? true : [...config.corsOrigins];
  await http.register(fastifyCors, {
    // A request without Origin is not a browser's cross-origin call: `false` gives it no CORS header (every answer
    // to an SDK or a backend carried a 290-byte expose list), though `vary: Origin` is still set. With an Origin,
    // the configured option as before: reflected when allowed.
    origin: (origin, cb) => cb(null, origin === undefined ? false : allowedOrigins),
    methods: [...connectCors.allowedMethods, "PATCH", "DELETE"],
    // No list of allowed headers: the preflight's are reflected. Clients add headers of their own (the OpenAI SDKs
    // send ten X-Stainless-* on every call; a fixed list made each browser call fail its preflight). Origins are the
    // boundary here, and the key travels in a header, not in a cookie.
    exposedHeaders: [
      ...connectCors.exposedHeaders,
      "X-Request-Id",
      "Retry-After",
      "Server-Timing",
      ...RATE_LIMIT_HEADERS,
    ],
    maxAge: 7200,
  });
  // The RPC interceptor keeps Fastify's request id (taken from a well-formed x-request-id, else generated).
  const contextValues = (req: { id: string }) => createContextValues().set(kRequestId, req.id);
  await http.register(fastifyConnectPlugin, { routes: core.routes, ...core.routerOptions, grpc: false, contextValues });
  registerHealth(http, core);
  registerMetrics(http, core, logger);
  if (config.bridgeEnabled && opts.restApi) {
    const transport = createInProcessTransport(core.services, { interceptors: core.routerOptions.interceptors });
    await http.register(opts.restApi, { transport, maxFileBytes: config.rag.maxFileBytes });
  }

  const h2 = Fastify({ ...common, http2: true }) as unknown as FastifyInstance;
  core.metrics.http.instrument(h2);
  // HTTP/2 clients keep sessions open; on shutdown they get a GOAWAY (in-flight streams finish), then are destroyed
  // when the grace period ends.
  const sessions = new Set<Http2Session>();
  (h2.server as unknown as Http2Server).on("session", (session: Http2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  await h2.register(fastifyConnectPlugin, { routes: core.routes, ...core.routerOptions, contextValues });
  registerHealth(h2, core);

  // Only /metrics, no auth: reachable by whoever reaches its address (127.0.0.1 unless PASSERELLE_METRICS_HOST).
  let scrape: FastifyInstance | undefined;
  if (config.metrics.port !== undefined) {
    scrape = Fastify({ loggerInstance: logger, logController: common.logController }) as unknown as FastifyInstance;
    scrape.get("/metrics", async (_req, reply) => reply.type(core.metrics.contentType).send(await core.metrics.text()));
  }

  try {
    if (config.compactAfterStart) {
      await Promise.all([http.ready(), h2.ready(), scrape?.ready()]);
      await compactHeap(logger);
    }
    await http.listen({ host: config.httpHost, port: config.httpPort });
    await h2.listen({ host: config.httpHost, port: config.grpcPort });
    await scrape?.listen({ host: config.metrics.host, port: config.metrics.port });
  } catch (err) {
    await Promise.allSettled([http.close(), h2.close(), scrape?.close()]);
    await core.close();
    throw err;
  }
  const url = (app: FastifyInstance, bound = config.httpHost) => {
    const addr = app.server.address() as AddressInfo;
    const host = bound === "0.0.0.0" || bound === "::" ? "127.0.0.1" : bound.includes(":") ? `[${bound}]` : bound;
    return `http://${host}:${addr.port}`;
  };

  let closing: Promise<void> | undefined;
  return {
    core,
    httpUrl: url(http),
    grpcUrl: url(h2),
    metricsUrl: scrape && url(scrape, config.metrics.host),
    close() {
      closing ??= (async () => {
        const drained = Promise.allSettled([http.close(), h2.close(), scrape?.close()]);
        for (const session of sessions) session.close();
        // server.close() ends only the connections idle at that instant; a kept-alive connection whose request
        // finishes during the drain would otherwise stay open until the client drops it or the grace period ends.
        const idleSweep = setInterval(() => http.server.closeIdleConnections?.(), 50);
        let timer: NodeJS.Timeout | undefined;
        const deadline = new Promise<"timeout">((resolve) => {
          timer = setTimeout(() => resolve("timeout"), config.shutdownGraceMs);
        });
        if ((await Promise.race([drained, deadline])) === "timeout") {
          logger.warn({ graceMs: config.shutdownGraceMs }, "grace period over; closing remaining connections");
          http.server.closeAllConnections?.();
          for (const session of sessions) session.destroy();
          await drained;
        }
        clearTimeout(timer);
        clearInterval(idleSweep);
        await core.close();
      })();
      return closing;
    },
  };
}

function registerHealth(app: FastifyInstance, core: Core): void {
  // Every response carries the request id (the bridge and the RPC interceptor set it on theirs too).
  app.addHook("onRequest", (req, reply, done) => {
    reply.header("x-request-id", req.id);
    done();
  });
  app.get("/health", { schema: { hide: true } }, async () => ({ status: "ok" }));
  app.get("/health/ready", { schema: { hide: true } }, async (_req, reply) => {
    const checks = await core.checkReady();
    const ok = checks.database && checks.kv;
    return reply.code(ok ? 200 : 503).send({
      status: ok ? "ok" : "unavailable",
      database: { kind: core.db.kind, ok: checks.database },
      kv: { kind: core.kv.kind, ok: checks.kv },
    });
  });
}

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

/** OpenAI's error shape, as the REST API answers (this file knows no bridge code, hence its own copy). */
const refusal = (status: number, type: string, code: string, message: string) => ({
  status,
  body: { error: { message, type, param: null, code } },
});

/** Why a /metrics request is refused, or undefined: a key whose role has `read_metrics` or `admin` is needed. */
async function metricsRefusal(core: Core, logger: Logger, header: string | undefined) {
  const token = header ? BEARER.exec(header)?.[1] : undefined;
  if (!token) {
    return header
      ? refusal(401, "invalid_request_error", "invalid_authorization_header", "Expected 'Bearer <API key>'.")
      : refusal(401, "invalid_request_error", "missing_api_key", "Send an API key as 'Authorization: Bearer <key>'.");
  }
  try {
    const principal = await core.authenticate(token);
    if (principal.userExpiresAt && principal.userExpiresAt.getTime() <= Date.now()) {
      return refusal(403, "permission_error", "account_expired", "Your account has expired.");
    }
    if (principal.permissions.has("read_metrics") || principal.permissions.has("admin")) return undefined;
    return refusal(403, "permission_error", "permission_denied", "Reading metrics needs the read_metrics permission.");
  } catch (err) {
    const ce = ConnectError.from(err);
    if (ce.code === Code.Unauthenticated) {
      const reason = ce.findDetails(ErrorInfoSchema)[0]?.reason ?? "INVALID_API_KEY";
      return refusal(401, "invalid_request_error", reason.toLowerCase(), ce.rawMessage);
    }
    logger.error({ err }, "could not verify the key of a metrics request");
    return refusal(503, "service_unavailable_error", "unavailable", "Could not verify the API key; try again shortly.");
  }
}

function registerMetrics(app: FastifyInstance, core: Core, logger: Logger): void {
  app.get("/metrics", { schema: { hide: true } }, async (req, reply) => {
    const refused = await metricsRefusal(core, logger, req.headers.authorization);
    if (refused) return reply.code(refused.status).send(refused.body);
    return reply.type(core.metrics.contentType).send(await core.metrics.text());
  });
}

/**
 * Starting leaves about 25 MiB behind that nothing uses again (the migrations, the ORM's metadata discovery, the
 * compilation of routes and schemas), and V8 does not collect an idle heap: until traffic comes, the process would keep
 * it resident. One memory-reducing collection before listening gives it back: the one DevTools' "collect garbage"
 * runs (HeapProfiler.collectGarbage). A plain `gc()` (--expose-gc), tried first, left some 15 MB more in use. Takes
 * about 100 ms once, before the first connection is accepted. The in-process inspector session opens no port. Best
 * effort: a Node built without the inspector starts uncompacted.
 */
async function compactHeap(logger: Logger): Promise<void> {
  try {
    const { Session } = await import("node:inspector/promises");
    const session = new Session();
    session.connect();
    try {
      await session.post("HeapProfiler.collectGarbage");
    } finally {
      session.disconnect();
    }
  } catch (err) {
    logger.debug({ err }, "could not compact the heap after start");
  }
}
