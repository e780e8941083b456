import type { Transport } from "@connectrpc/connect";
import { ConnectError } from "@connectrpc/connect";
import { SerializerSelector } from "@fastify/fast-json-stringify-compiler";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import { Ajv, type ValidateFunction } from "ajv";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { MeView } from "../gen/passerelle/accounts/v1/account_service_pb.js";
import { maxFileBytesFromEnv } from "./config.js";
import { InvalidRequest } from "./openai/chat.js";
import { fromConnectError, type HttpError, openAIError, restParam } from "./openai/errors.js";
import { adminModelRoutes } from "./routes/admin-models.js";
import { adminRoleRoutes } from "./routes/admin-roles.js";
import { adminUserRoutes } from "./routes/admin-users.js";
import { audioRoutes } from "./routes/audio.js";
import { budgetRoutes } from "./routes/budgets.js";
import { chatRoutes } from "./routes/chat.js";
import { collectionRoutes } from "./routes/collections.js";
import { documentRoutes } from "./routes/documents.js";
import { embeddingsRoutes } from "./routes/embeddings.js";
import { keyRoutes } from "./routes/keys.js";
import { meRoutes } from "./routes/me.js";
import { modelRoutes } from "./routes/models.js";
import { ocrRoutes } from "./routes/ocr.js";
import { providerStateRoutes } from "./routes/provider-states.js";
import { rerankRoutes } from "./routes/rerank.js";
import { searchRoutes } from "./routes/search.js";
import { usageRoutes } from "./routes/usage.js";
import { callOptions, createClients } from "./rpc.js";
import { apiKeySchema, meSchema, organizationSchema, roleSchema, userSchema } from "./schemas/accounts.js";
import { collectionSchemas } from "./schemas/collections.js";
import { errorSchema } from "./schemas/common.js";
import { governanceSchemas } from "./schemas/governance.js";
import { adminModelSchema, modelGrantSchema, openAIModelSchema, providerSchema } from "./schemas/models.js";

declare module "fastify" {
  interface FastifyContextConfig {
    /** Route callable without an API key. */
    public?: boolean;
    /**
     * The route reads its body outside `bodyLimit` (multipart parts, read by the route itself): the key is verified
     * with an RPC before any of it is read, so that a caller with a made-up key gets a 401 and costs no buffering.
     */
    verifyKeyFirst?: boolean;
  }
  interface FastifyRequest {
    /** The caller's `x-request-id` when well-formed, else the server's request id; echoed and sent to RPCs. */
    requestId: string;
  }
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface BridgeOptions {
  /** How the bridge reaches the services: in-process router transport, or Connect/gRPC to a remote core. */
  transport: Transport;
  /**
   * Largest file `POST /v1/documents` reads before answering 413; keep it equal to the core's
   * `rag.maxFileBytes`. Default: PASSERELLE_RAG_MAX_FILE_BYTES, else 20 MiB (see config.ts).
   */
  maxFileBytes?: number;
}

const BEARER = /^Bearer[ \t]+\S+[ \t]*$/i;
const utf8 = new TextDecoder("utf-8", { fatal: true });

function badRequest(message: string, code: string): FastifyError {
  return Object.assign(new Error(message), { statusCode: 400, code, name: "BadRequest" }) as FastifyError;
}

/**
 * The OpenAI-compatible REST API (and the reference system's own routes), as a Fastify plugin. Every route
 * translates to an RPC through `transport`; the bridge holds no state and imports no service code.
 */
export async function bridgePlugin(app: FastifyInstance, opts: BridgeOptions): Promise<void> {
  const clients = createClients(opts.transport);

  // Bodies: strict JSON (well-formed UTF-8, no type coercion: a number where a string is expected is a 400).
  // Query strings and params: coerced, since they are text by nature.
  // Validators and response serializers are compiled on a route's first use, not at start: of some 150 routes a
  // deployment uses a handful, and compiling them all held about 4 MB of heap (1.7 validators, 2.2 serializers) for
  // nothing. Each is the same function Fastify would have compiled at start; only the moment of compiling differs.
  const strict = new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, strict: false });
  const coercing = new Ajv({ coerceTypes: "array", useDefaults: true, removeAdditional: false, strict: false });
  app.setValidatorCompiler(({ schema, httpPart }) => {
    let fn: ValidateFunction | undefined;
    const lazy = ((data: unknown) => {
      fn ??= (httpPart === "body" ? strict : coercing).compile(schema);
      const ok = fn(data);
      // Fastify reads the errors off the function it was given.
      lazy.errors = fn.errors;
      return ok;
    }) as ValidateFunction;
    return lazy;
  });

  // JSON only: without this, Fastify's default text/plain parser hands a string to validation, and a client that
  // forgot the content type (fetch's default for a string body) gets "body must be object" instead of a 415.
  app.removeContentTypeParser(["application/json", "text/plain"]);
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (_req, body: Buffer, done) => {
    if (body.length === 0) return done(null, undefined);
    let text: string;
    try {
      text = utf8.decode(body);
    } catch {
      return done(badRequest("The request body is not valid UTF-8.", "invalid_utf8"), undefined);
    }
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(badRequest(`The request body is not valid JSON: ${(err as Error).message}`, "invalid_json"), undefined);
    }
  });

  for (const s of [errorSchema, userSchema, roleSchema, organizationSchema, apiKeySchema, meSchema]) app.addSchema(s);
  for (const s of [openAIModelSchema, providerSchema, adminModelSchema, modelGrantSchema]) app.addSchema(s);
  for (const s of governanceSchemas) app.addSchema(s);
  for (const s of collectionSchemas) app.addSchema(s);
  // Fastify's own serializer compiler (fast-json-stringify, resolving the shared schemas above), built lazily.
  const serializerOf = SerializerSelector()(app.getSchemas(), {});
  app.setSerializerCompiler((route) => {
    let fn: ((data: unknown) => string) | undefined;
    return (data: unknown) => {
      fn ??= serializerOf({ ...route, httpStatus: route.httpStatus ?? "" });
      return fn(data);
    };
  });

  app.decorateRequest("requestId", "");
  // Callback style, not async: no promise per request on the hot path. Answering early means not calling `done`.
  app.addHook("onRequest", (req, reply, done) => {
    const incoming = req.headers["x-request-id"];
    req.requestId = typeof incoming === "string" && REQUEST_ID.test(incoming) ? incoming : req.id;
    reply.header("x-request-id", req.requestId);
    if (!req.routeOptions.url || req.routeOptions.config.public) return done();
    const auth = req.headers.authorization;
    if (!auth || !BEARER.test(auth)) {
      const missing = !auth;
      const e = openAIError(
        401,
        "invalid_request_error",
        missing
          ? "Missing API key. Send it as 'Authorization: Bearer <API key>'."
          : "Malformed Authorization header; expected 'Bearer <API key>'.",
        null,
        missing ? "missing_api_key" : "invalid_authorization_header",
      );
      reply.code(401).send(e.body);
      return;
    }
    if (!req.routeOptions.config.verifyKeyFirst) return done();
    // GetMe BASIC: the cheapest authenticated RPC (a cached key lookup and one profile read). Its error, a 401 for a
    // bad key, goes through the error handler like any RPC's. The unread body is then discarded by Node, not kept.
    clients.accounts.getMe({ view: MeView.BASIC }, callOptions(req, reply)).then(() => done(), done);
  });

  app.setErrorHandler((err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    const http = toHttpError(err);
    const raw: unknown = err;
    // A ConnectError was logged with its cause where it happened (the service); only note it here.
    if (http.status >= 500 && raw instanceof ConnectError) req.log.warn({ code: raw.code }, "rpc failed");
    else if (http.status >= 500) req.log.error({ err: raw }, "request failed");
    return reply.code(http.status).headers(http.headers).send(http.body);
  });

  app.setNotFoundHandler((req, reply) => {
    const e = openAIError(
      404,
      "invalid_request_error",
      `Unknown route: ${req.method} ${req.url.split("?")[0]}`,
      null,
      "unknown_route",
    );
    return reply.code(404).send(e.body);
  });

  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Passerelle REST API",
        version: "0.1.0",
        description:
          "OpenAI-compatible API over open-weight models, with accounts, keys and governance. Every route is a " +
          "translation of a Connect RPC (see proto/). Errors use OpenAI's shape.",
      },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer", bearerFormat: "sk-…" } } },
    },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (json.$id as string) ?? `def-${i}` },
  });
  app.addHook("onRoute", (route) => {
    if (route.url.startsWith("/docs")) route.config = { ...(route.config ?? {}), public: true };
  });
  await app.register(swaggerUi, { routePrefix: "/docs", uiConfig: { docExpansion: "list" } });
  app.get("/openapi.json", { config: { public: true }, schema: { hide: true } }, async () => app.swagger());

  meRoutes(app, clients);
  keyRoutes(app, clients);
  adminUserRoutes(app, clients);
  adminRoleRoutes(app, clients);
  modelRoutes(app, clients);
  adminModelRoutes(app, clients);
  chatRoutes(app, clients);
  embeddingsRoutes(app, clients);
  rerankRoutes(app, clients);
  providerStateRoutes(app, clients);
  usageRoutes(app, clients);
  budgetRoutes(app, clients);
  collectionRoutes(app, clients);
  await documentRoutes(app, clients, { maxFileBytes: opts.maxFileBytes ?? maxFileBytesFromEnv() });
  searchRoutes(app, clients);
  ocrRoutes(app, clients, { maxFileBytes: opts.maxFileBytes ?? maxFileBytesFromEnv() });
  await audioRoutes(app, clients, { maxFileBytes: opts.maxFileBytes ?? maxFileBytesFromEnv() });
}

/** Every error a route can raise, in OpenAI's shape. */
export function toHttpError(err: FastifyError | ConnectError | Error): HttpError {
  if (err instanceof InvalidRequest) {
    return openAIError(400, "invalid_request_error", err.message, err.param, "invalid_value");
  }
  if (err instanceof ConnectError) {
    const http = fromConnectError(err);
    http.body.error.param = restParam(http.body.error.param);
    return http;
  }
  const fe = err as FastifyError;
  if (fe.validation) {
    const first = fe.validation[0];
    const path = first?.instancePath.replace(/^\//, "").replace(/\//g, ".");
    const missing = (first?.params as { missingProperty?: string } | undefined)?.missingProperty;
    const extra = (first?.params as { additionalProperty?: string } | undefined)?.additionalProperty;
    const param = [path, missing ?? extra].filter(Boolean).join(".") || null;
    const where = fe.validationContext === "body" ? "body" : (fe.validationContext ?? "request");
    const detail = extra ? `has an unknown field '${extra}'` : (first?.message ?? "is invalid");
    return openAIError(
      400,
      "invalid_request_error",
      `Invalid ${where}: ${param ?? where} ${detail}.`,
      param,
      "invalid_value",
    );
  }
  switch (fe.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return openAIError(413, "invalid_request_error", "The request body is too large.", null, "request_too_large");
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return openAIError(
        415,
        "invalid_request_error",
        "Unsupported Content-Type; send application/json.",
        null,
        "unsupported_media_type",
      );
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return openAIError(400, "invalid_request_error", "The request body is empty.", null, "invalid_json");
  }
  const status = fe.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    return openAIError(
      status,
      "invalid_request_error",
      fe.message,
      null,
      typeof fe.code === "string" ? fe.code.toLowerCase() : null,
    );
  }
  return fromConnectError(err);
}
