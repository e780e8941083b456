import type { Http2Server, Http2Session } from "node:http2";
import type { AddressInfo } from "node:net";
import type { Transport } from "@connectrpc/connect";
import { cors as connectCors, createContextValues } from "@connectrpc/connect";
import { fastifyConnectPlugin } from "@connectrpc/connect-fastify";
import fastifyCors from "@fastify/cors";
import Fastify, { type FastifyInstance, type FastifyPluginAsync, LogController } from "fastify";
import type { Logger } from "pino";
import type { CoreConfig } from "./config.js";
import { type Core, createCore } from "./core.js";
import { kRequestId } from "./platform/context.js";
import { createInProcessTransport } from "./platform/in-process-transport.js";
import { requestIdFrom } from "./platform/interceptors.js";

export interface Platform {
  readonly core: Core;
  /** http://host:port of the HTTP/1.1 listener (REST, Connect, gRPC-web). */
  readonly httpUrl: string;
  /** http://host:port of the h2c listener (gRPC, Connect). */
  readonly grpcUrl: string;
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
 */
export async function startPlatform(
  config: CoreConfig,
  logger: Logger,
  opts: { restApi?: FastifyPluginAsync<{ transport: Transport }> } = {},
): Promise<Platform> {
  const core = await createCore(config, logger);
  const common = {
    loggerInstance: logger,
    genReqId: (req: { headers: Record<string, string | string[] | undefined> }) =>
      requestIdFrom(typeof req.headers["x-request-id"] === "string" ? req.headers["x-request-id"] : undefined),
    bodyLimit: config.bodyLimitBytes,
    // The RPC interceptor logs each call once; Fastify's own per-request lines only at debug.
    logController: new LogController({ disableRequestLogging: logger.level !== "debug" && logger.level !== "trace" }),
  };

  const http = Fastify({ ...common, forceCloseConnections: "idle" }) as unknown as FastifyInstance;
  await http.register(fastifyCors, {
    origin: config.corsOrigins.includes("*") ? true : [...config.corsOrigins],
    methods: [...connectCors.allowedMethods, "PATCH", "DELETE"],
    allowedHeaders: [...connectCors.allowedHeaders, "Authorization", "X-Request-Id"],
    exposedHeaders: [...connectCors.exposedHeaders, "X-Request-Id", "Retry-After"],
    maxAge: 7200,
  });
  // The RPC interceptor keeps Fastify's request id (taken from a well-formed x-request-id, else generated).
  const contextValues = (req: { id: string }) => createContextValues().set(kRequestId, req.id);
  await http.register(fastifyConnectPlugin, { routes: core.routes, ...core.routerOptions, grpc: false, contextValues });
  registerHealth(http, core);
  if (config.bridgeEnabled && opts.restApi) {
    const transport = createInProcessTransport(core.services, { interceptors: core.routerOptions.interceptors });
    await http.register(opts.restApi, { transport });
  }

  const h2 = Fastify({ ...common, http2: true }) as unknown as FastifyInstance;
  // HTTP/2 clients keep sessions open; on shutdown they get a GOAWAY (in-flight streams finish), then are destroyed
  // when the grace period ends.
  const sessions = new Set<Http2Session>();
  (h2.server as unknown as Http2Server).on("session", (session: Http2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  await h2.register(fastifyConnectPlugin, { routes: core.routes, ...core.routerOptions, contextValues });
  registerHealth(h2, core);

  try {
    await http.listen({ host: config.httpHost, port: config.httpPort });
    await h2.listen({ host: config.httpHost, port: config.grpcPort });
  } catch (err) {
    await Promise.allSettled([http.close(), h2.close()]);
    await core.close();
    throw err;
  }
  const url = (app: FastifyInstance) => {
    const addr = app.server.address() as AddressInfo;
    const host = config.httpHost === "0.0.0.0" || config.httpHost === "::" ? "127.0.0.1" : config.httpHost;
    return `http://${host}:${addr.port}`;
  };

  let closing: Promise<void> | undefined;
  return {
    core,
    httpUrl: url(http),
    grpcUrl: url(h2),
    close() {
      closing ??= (async () => {
        const drained = Promise.allSettled([http.close(), h2.close()]);
        for (const session of sessions) session.close();
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
        await core.close();
      })();
      return closing;
    },
  };
}

function registerHealth(app: FastifyInstance, core: Core): void {
  // Every response carries the request id (the bridge and the RPC interceptor set it on theirs too).
  app.addHook("onRequest", async (req, reply) => {
    reply.header("x-request-id", req.id);
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
