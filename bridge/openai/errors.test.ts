// Over 400 lines on purpose: one exhaustive table test per Connect code and per Fastify error kind, kept together
// so that the whole REST error contract reads in one place.
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { Ajv } from "ajv";
import Fastify, { type FastifyError, type FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/passerelle/errors/v1/error_info_pb.js";
import { validateOpenAI } from "../../test/support/openai-schema.js";
import { toHttpError } from "../app.js";
import { createUserBody, roleBody } from "../schemas/accounts.js";
import { pagingQuery } from "../schemas/common.js";
import {
  ERROR_TABLE,
  fromConnectError,
  GENERIC_MESSAGE,
  type HttpError,
  openAIError,
  REST_PARAM,
  restParam,
} from "./errors.js";

/**
 * The documented table (conventions.md §5, plus the codes it leaves open, as documented in errors.ts), written out
 * again here so that a change to the code's table is a deliberate change to this one too.
 */
const DOCUMENTED: Record<string, { status: number; type: string }> = {
  Canceled: { status: 499, type: "request_cancelled" },
  Unknown: { status: 500, type: "server_error" },
  InvalidArgument: { status: 400, type: "invalid_request_error" },
  DeadlineExceeded: { status: 504, type: "timeout_error" },
  NotFound: { status: 404, type: "invalid_request_error" },
  AlreadyExists: { status: 409, type: "conflict_error" },
  PermissionDenied: { status: 403, type: "permission_error" },
  ResourceExhausted: { status: 429, type: "rate_limit_error" },
  FailedPrecondition: { status: 409, type: "conflict_error" },
  Aborted: { status: 409, type: "conflict_error" },
  OutOfRange: { status: 400, type: "invalid_request_error" },
  Unimplemented: { status: 501, type: "not_implemented_error" },
  Internal: { status: 500, type: "server_error" },
  Unavailable: { status: 503, type: "service_unavailable_error" },
  DataLoss: { status: 500, type: "server_error" },
  Unauthenticated: { status: 401, type: "invalid_request_error" },
};
const SECRET_CODES = new Set<Code>([Code.Unknown, Code.Internal, Code.DataLoss]);

/** Every numeric value of Connect's Code enum (a TS numeric enum also maps names ← numbers: skip those). */
const ALL_CODES = Object.values(Code).filter((v): v is Code => typeof v === "number");

function errorWithInfo(
  code: Code,
  message: string,
  info: { reason?: string; param?: string; retryAfterSeconds?: number },
) {
  return new ConnectError(message, code, undefined, [{ desc: ErrorInfoSchema, value: create(ErrorInfoSchema, info) }]);
}

/** The shape checks every produced error must pass, whatever the input. */
function expectWellFormed(http: HttpError): void {
  validateOpenAI("ErrorResponse", http.body);
  expect(Object.keys(http.body.error).sort()).toEqual(["code", "message", "param", "type"]);
  expect(http.body.error.message.length).toBeGreaterThan(0);
  expect(http.status).toBeGreaterThanOrEqual(400);
  expect(http.status).toBeLessThan(600);
}

describe("validateOpenAI (the check the tests below rely on is not vacuous)", () => {
  it.each([
    ["no error object", {}],
    ["error is a string", { error: "boom" }],
    ["param missing", { error: { message: "m", type: "t", code: null } }],
    ["code missing", { error: { message: "m", type: "t", param: null } }],
    ["param a number", { error: { message: "m", type: "t", param: 3, code: null } }],
    ["message null", { error: { message: null, type: "t", param: null, code: null } }],
  ])("rejects a body with %s", (_what, body) => {
    expect(() => validateOpenAI("ErrorResponse", body)).toThrow(/does not match OpenAI's ErrorResponse/);
  });

  it("accepts OpenAI's own example and refuses unknown component names", () => {
    validateOpenAI("ErrorResponse", {
      error: {
        message: "Incorrect API key provided.",
        type: "invalid_request_error",
        param: null,
        code: "invalid_api_key",
      },
    });
    expect(() => validateOpenAI("NoSuchComponent", {})).toThrow(/no component schema/);
  });
});

describe("ERROR_TABLE", () => {
  it("covers exactly Connect's 16 codes", () => {
    expect(ALL_CODES).toHaveLength(16);
    expect(
      Object.keys(ERROR_TABLE)
        .map(Number)
        .sort((a, b) => a - b),
    ).toEqual([...ALL_CODES].sort((a, b) => a - b));
  });

  it.each(ALL_CODES.map((c) => [Code[c], c] as const))("maps %s to the documented status and type", (name, code) => {
    const want = DOCUMENTED[name];
    expect(want, `no documented row for Code.${name}`).toBeDefined();
    expect(ERROR_TABLE[code]).toEqual(want);
    const http = fromConnectError(new ConnectError("something specific went wrong", code));
    expect(http.status).toBe(want?.status);
    expect(http.body.error.type).toBe(want?.type);
    expect(http.body.error.param).toBeNull();
    expect(http.body.error.code).toBeNull();
    expect(http.headers).toEqual({});
    if (SECRET_CODES.has(code)) expect(http.body.error.message).toBe(GENERIC_MESSAGE);
    // rawMessage, not ConnectError's "[code] message" form
    else expect(http.body.error.message).toBe("something specific went wrong");
    expectWellFormed(http);
  });

  it("uses distinct statuses only where the documented table says so (spot check of the conventions' rows)", () => {
    const byName = (n: keyof typeof Code) => ERROR_TABLE[Code[n]].status;
    expect(byName("InvalidArgument")).toBe(400);
    expect(byName("Unauthenticated")).toBe(401);
    expect(byName("PermissionDenied")).toBe(403);
    expect(byName("NotFound")).toBe(404);
    expect(byName("AlreadyExists")).toBe(409);
    expect(byName("ResourceExhausted")).toBe(429);
    expect(byName("Internal")).toBe(500);
    expect(byName("Unavailable")).toBe(503);
    expect(byName("DeadlineExceeded")).toBe(504);
  });
});

describe("fromConnectError: ErrorInfo", () => {
  it.each(ALL_CODES.map((c) => [Code[c], c] as const))(
    "%s: reason → lowercased code, param passed through",
    (_n, code) => {
      const http = fromConnectError(errorWithInfo(code, "m", { reason: "ROLE_NOT_FOUND", param: "role_id" }));
      expect(http.body.error.code).toBe("role_not_found");
      expect(http.body.error.param).toBe("role_id");
      expectWellFormed(http);
    },
  );

  it("keeps nested param paths as they are", () => {
    const http = fromConnectError(
      errorWithInfo(Code.InvalidArgument, "m", { reason: "X", param: "messages.0.content" }),
    );
    expect(http.body.error.param).toBe("messages.0.content");
  });

  it("gives null param and code when the detail's fields are empty, and when there is no detail", () => {
    for (const err of [errorWithInfo(Code.NotFound, "m", {}), new ConnectError("m", Code.NotFound)]) {
      const http = fromConnectError(err);
      expect(http.body.error.param).toBeNull();
      expect(http.body.error.code).toBeNull();
      expectWellFormed(http);
    }
  });

  it("answers 413 for the FILE_TOO_LARGE reason, whatever the code", () => {
    const http = fromConnectError(
      errorWithInfo(Code.InvalidArgument, "too big", { reason: "FILE_TOO_LARGE", param: "file" }),
    );
    expect(http.status).toBe(413);
    expect(http.body.error).toMatchObject({ type: "invalid_request_error", code: "file_too_large", param: "file" });
    expectWellFormed(http);
  });

  it("maps the INSUFFICIENT_QUOTA reason to OpenAI's own type", () => {
    const http = fromConnectError(errorWithInfo(Code.ResourceExhausted, "quota", { reason: "INSUFFICIENT_QUOTA" }));
    expect(http.status).toBe(429);
    expect(http.body.error).toMatchObject({ type: "insufficient_quota", code: "insufficient_quota" });
    expectWellFormed(http);
  });

  it("reads the detail of an error that came over the wire (binary detail, not a message)", () => {
    const info = create(ErrorInfoSchema, { reason: "RATE_LIMITED", param: "model", retryAfterSeconds: 12 });
    const wire = new ConnectError("slow down", Code.ResourceExhausted);
    wire.details.push({ type: ErrorInfoSchema.typeName, value: toBinary(ErrorInfoSchema, info) });
    const http = fromConnectError(wire);
    expect(http).toMatchObject({
      status: 429,
      headers: { "retry-after": "12" },
      body: { error: { message: "slow down", type: "rate_limit_error", param: "model", code: "rate_limited" } },
    });
    expectWellFormed(http);
  });
});

describe("fromConnectError: retry-after", () => {
  it.each([
    ["ResourceExhausted", Code.ResourceExhausted, 30],
    ["Unavailable", Code.Unavailable, 5],
  ])("%s with retry_after_seconds %i sets the header", (_name, code, seconds) => {
    const http = fromConnectError(errorWithInfo(code, "m", { reason: "BUSY", retryAfterSeconds: seconds }));
    expect(http.headers).toEqual({ "retry-after": String(seconds) });
    expectWellFormed(http);
  });

  it.each([
    ["ResourceExhausted", Code.ResourceExhausted],
    ["Unavailable", Code.Unavailable],
  ])("%s without a positive delay sets no header", (_name, code) => {
    for (const retryAfterSeconds of [0, -5]) {
      expect(fromConnectError(errorWithInfo(code, "m", { reason: "BUSY", retryAfterSeconds })).headers).toEqual({});
    }
    expect(fromConnectError(new ConnectError("m", code)).headers).toEqual({});
  });

  it("no other code ever sets it, even with a delay in the detail", () => {
    for (const code of ALL_CODES) {
      const status = ERROR_TABLE[code].status;
      const http = fromConnectError(errorWithInfo(code, "m", { reason: "BUSY", retryAfterSeconds: 7 }));
      if (status === 429 || status === 503) expect(http.headers).toEqual({ "retry-after": "7" });
      else expect(http.headers, `Code.${Code[code]}`).toEqual({});
    }
  });
});

describe("fromConnectError: no leaks", () => {
  it.each([
    ["Internal", Code.Internal],
    ["Unknown", Code.Unknown],
    ["DataLoss", Code.DataLoss],
  ])("%s never sends its message or its cause", (_name, code) => {
    const secret = "password=hunter2 at pg://db.internal:5432";
    const err = new ConnectError(`query failed: ${secret}`, code, undefined, undefined, new Error(secret));
    const http = fromConnectError(err);
    expect(http.status).toBe(500);
    expect(http.body.error.message).toBe(GENERIC_MESSAGE);
    expect(JSON.stringify(http)).not.toContain("hunter2");
    expectWellFormed(http);
  });

  it("keeps the generic message even when the detail carries a reason", () => {
    const http = fromConnectError(errorWithInfo(Code.Internal, "SELECT * FROM users failed", { reason: "INTERNAL" }));
    expect(http.body.error).toEqual({ message: GENERIC_MESSAGE, type: "server_error", param: null, code: "internal" });
  });

  it.each([
    ["an Error", new Error("ECONNREFUSED 10.0.0.3:5432 (secret)")],
    ["a TypeError", new TypeError("Cannot read properties of undefined (reading 'secret')")],
    ["a string", "secret string"],
    ["an object", { secret: true }],
    ["undefined", undefined],
    ["null", null],
  ])("%s becomes a generic 500", (_what, input) => {
    const http = fromConnectError(input);
    expect(http).toEqual({
      status: 500,
      headers: {},
      body: { error: { message: GENERIC_MESSAGE, type: "server_error", param: null, code: null } },
    });
    expectWellFormed(http);
  });

  it("treats a code outside Connect's enum as Unknown: 500 and a generic message", () => {
    const http = fromConnectError(new ConnectError("leaky details", 99 as Code));
    expect(http.status).toBe(500);
    expect(http.body.error).toMatchObject({ message: GENERIC_MESSAGE, type: "server_error" });
    expectWellFormed(http);
  });
});

describe("restParam: RPC field names → REST names", () => {
  it.each([
    ["page_token", "after"],
    ["page_size", "limit"],
    ["role_id", "role"],
    ["organization_id", "organization"],
    ["user_id", "user"],
    ["expire_time", "expires"],
    ["clear_expire_time", "expires"],
    ["expire_time.seconds", "expires.seconds"],
    ["email", "email"],
    ["name", "name"],
    ["permissions", "permissions"],
    ["messages.0.role_id", "messages.0.role_id"],
    ["page_token_x", "page_token_x"],
    ["model_id", "model"],
    ["upstream_model", "model_name"],
    ["timeout_seconds", "timeout_s"],
    ["cost_prompt_per_million", "costs.prompt_tokens"],
    ["carbon.zone", "carbon.zone"],
  ])("%s → %s", (from, to) => {
    expect(restParam(from)).toBe(to);
  });

  it("keeps null and empty", () => {
    expect(restParam(null)).toBeNull();
    expect(restParam("")).toBe("");
  });

  it("renames only to names the REST schemas use", () => {
    expect(new Set(Object.values(REST_PARAM))).toEqual(
      new Set([
        "limit",
        "after",
        "role",
        "organization",
        "user",
        "expires",
        "model",
        "model_name",
        "timeout_s",
        "costs.prompt_tokens",
        "costs.completion_tokens",
      ]),
    );
  });
});

describe("openAIError", () => {
  it("builds OpenAI's shape with null defaults", () => {
    const e = openAIError(404, "invalid_request_error", "Unknown route: GET /nope");
    expect(e).toEqual({
      status: 404,
      headers: {},
      body: { error: { message: "Unknown route: GET /nope", type: "invalid_request_error", param: null, code: null } },
    });
    expectWellFormed(e);
    expect(openAIError(400, "invalid_request_error", "m", "p", "c").body.error).toMatchObject({
      param: "p",
      code: "c",
    });
  });
});

/**
 * toHttpError on the errors Fastify really raises: a small app set up like the bridge (strict Ajv for bodies,
 * coercing for query strings) that hands whatever error reaches its error handler to toHttpError.
 */
describe("toHttpError on Fastify's errors", () => {
  let app: FastifyInstance;
  /** The error the last request raised, as Fastify handed it to the error handler. */
  const last: { err?: FastifyError } = {};
  const raised = () => last.err;

  beforeAll(async () => {
    app = Fastify({ bodyLimit: 1024 });
    const strict = new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, strict: false });
    const coercing = new Ajv({ coerceTypes: "array", useDefaults: true, removeAdditional: false, strict: false });
    app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === "body" ? strict : coercing).compile(schema));
    app.setErrorHandler((err: FastifyError, _req, reply) => {
      last.err = err;
      const http = toHttpError(err);
      return reply.code(http.status).headers(http.headers).send(http.body);
    });
    app.post("/users", { schema: { body: createUserBody } }, async () => ({ ok: true }));
    app.post("/roles", { schema: { body: { ...roleBody, required: ["name"] } } }, async () => ({ ok: true }));
    app.get("/list", { schema: { querystring: { type: "object", properties: pagingQuery } } }, async () => ({
      ok: true,
    }));
    app.post("/boom", async () => {
      throw new Error("the database password is hunter2");
    });
    app.post("/teapot", async () => {
      throw Object.assign(new Error("I'm a teapot"), { statusCode: 418, code: "FST_TEAPOT" });
    });
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
  });

  async function call(method: "GET" | "POST", url: string, payload?: unknown, contentType = "application/json") {
    last.err = undefined;
    const res = await app.inject({
      method,
      url,
      ...(payload === undefined ? {} : { payload: payload as string, headers: { "content-type": contentType } }),
    });
    const body = res.json();
    validateOpenAI("ErrorResponse", body);
    return { status: res.statusCode, body: body as HttpError["body"], headers: res.headers, err: raised() };
  }

  it("a missing required field: 400, param = the field", async () => {
    const r = await call("POST", "/users", { role: "r" });
    expect(r.err?.validation).toBeDefined();
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ type: "invalid_request_error", param: "email", code: "invalid_value" });
    expect(r.body.error.message).toMatch(/^Invalid body: email /);
  });

  it("an unknown field: 400, param = the field, and the message says so", async () => {
    const r = await call("POST", "/users", { email: "a@b.fr", role: "r", admin: true });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ type: "invalid_request_error", param: "admin", code: "invalid_value" });
    expect(r.body.error.message).toContain("unknown field 'admin'");
  });

  it("a wrong type: 400 with the field's path (no coercion of body values)", async () => {
    const r = await call("POST", "/users", { email: 123, role: "r" });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ param: "email", code: "invalid_value" });
    expect(r.body.error.message).toMatch(/must be string/);
  });

  it("an unknown enum value inside an array: param is the dotted path", async () => {
    const r = await call("POST", "/roles", { name: "x", permissions: ["admin", "superuser"] });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ param: "permissions.1", code: "invalid_value" });
    expect(r.body.error.message).toMatch(/allowed values/);
  });

  it("a body that is not an object: 400 with a null param", async () => {
    const r = await call("POST", "/users", "[1,2]");
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ type: "invalid_request_error", param: null, code: "invalid_value" });
    expect(r.body.error.message).toBe("Invalid body: body must be object.");
  });

  it("a query-string error says 'querystring' and names the parameter", async () => {
    const r = await call("GET", "/list?limit=0");
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ param: "limit", code: "invalid_value" });
    expect(r.body.error.message).toMatch(/^Invalid querystring: limit must be >= 1/);
    expect((await call("GET", "/list?limit=abc")).body.error.param).toBe("limit");
  });

  it("a body over bodyLimit: 413 request_too_large", async () => {
    const r = await call("POST", "/users", JSON.stringify({ email: "a@b.fr", role: "r", name: "x".repeat(2000) }));
    expect(r.err?.code).toBe("FST_ERR_CTP_BODY_TOO_LARGE");
    expect(r.status).toBe(413);
    expect(r.body.error).toMatchObject({ type: "invalid_request_error", param: null, code: "request_too_large" });
  });

  it("an unsupported content type: 415 unsupported_media_type", async () => {
    const r = await call("POST", "/users", "email=a@b.fr", "application/x-www-form-urlencoded");
    expect(r.err?.code).toBe("FST_ERR_CTP_INVALID_MEDIA_TYPE");
    expect(r.status).toBe(415);
    expect(r.body.error).toMatchObject({ type: "invalid_request_error", param: null, code: "unsupported_media_type" });
  });

  it("an empty JSON body: 400 invalid_json", async () => {
    const r = await call("POST", "/users", "");
    expect(r.err?.code).toBe("FST_ERR_CTP_EMPTY_JSON_BODY");
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ type: "invalid_request_error", code: "invalid_json" });
  });

  it("any other 4xx keeps its status and message, with the lowercased code", async () => {
    const r = await call("POST", "/teapot", "{}");
    expect(r.status).toBe(418);
    expect(r.body.error).toEqual({
      message: "I'm a teapot",
      type: "invalid_request_error",
      param: null,
      code: "fst_teapot",
    });
  });

  it("an unexpected exception: generic 500, nothing leaked", async () => {
    const r = await call("POST", "/boom", "{}");
    expect(r.status).toBe(500);
    expect(r.body.error).toEqual({ message: GENERIC_MESSAGE, type: "server_error", param: null, code: null });
    expect(JSON.stringify(r.body)).not.toContain("hunter2");
  });

  it("passes ConnectErrors to the table", () => {
    const http = toHttpError(
      errorWithInfo(Code.AlreadyExists, "Role 'x' exists.", { reason: "ROLE_EXISTS", param: "name" }),
    );
    expect(http).toEqual({
      status: 409,
      headers: {},
      body: { error: { message: "Role 'x' exists.", type: "conflict_error", param: "name", code: "role_exists" } },
    });
  });

  it("renames an RPC param to the REST field (fromConnectError itself passes it through)", () => {
    const err = errorWithInfo(Code.InvalidArgument, "page_token is not a token this server issued.", {
      reason: "INVALID_ARGUMENT",
      param: "page_token",
    });
    expect(fromConnectError(err).body.error.param).toBe("page_token");
    expect(toHttpError(err).body.error).toMatchObject({ param: "after", code: "invalid_argument" });
    const role = errorWithInfo(Code.InvalidArgument, "No role.", { reason: "ROLE_NOT_FOUND", param: "role_id" });
    expect(toHttpError(role).body.error).toMatchObject({ param: "role", code: "role_not_found" });
  });

  it("maps the constructed Fastify errors too (no request needed)", async () => {
    const { errorCodes } = await import("fastify");
    expect(toHttpError(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE()).status).toBe(413);
    expect(toHttpError(new errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE("text/plain")).status).toBe(415);
    expect(toHttpError(new errorCodes.FST_ERR_CTP_EMPTY_JSON_BODY()).body.error.code).toBe("invalid_json");
    for (const http of [
      toHttpError(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE()),
      toHttpError(new errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE("text/plain")),
    ]) {
      expectWellFormed(http);
    }
  });
});
