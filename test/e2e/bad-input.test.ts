// Over 400 lines on purpose: a table of bad requests, each checked for its status, its OpenAI error shape and that
// nothing was written, against one running platform (starting one costs seconds).
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountService } from "../../gen/passerelle/accounts/v1/account_service_pb.js";
import type { Permission } from "../../gen/passerelle/accounts/v1/resources_pb.js";
import { ErrorInfoSchema } from "../../gen/passerelle/errors/v1/error_info_pb.js";
import { expectOpenAIError, type OpenAIErrorResponse } from "../support/openai-schema.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";

/**
 * Bad input on a running platform: every rejection is a 4xx in OpenAI's error shape (validated against OpenAI's
 * own OpenAPI document), names the field at fault, and writes nothing — each rejected request is bracketed by a
 * count of every admin collection.
 */

type Body = unknown;
const COLLECTIONS = ["/v1/admin/users", "/v1/admin/roles", "/v1/admin/organizations", "/v1/admin/keys"] as const;

function client(t: TestPlatform) {
  const h = (extra: Record<string, string> = {}) => ({ authorization: `Bearer ${t.adminKey}`, ...extra });

  /** Sends `body` as JSON; a string or a Buffer goes out byte for byte. */
  async function send(method: string, path: string, body?: Body, headers: Record<string, string> = {}) {
    const init: RequestInit = { method, headers: h(headers) };
    if (body !== undefined) {
      init.headers = h({ "content-type": "application/json", ...headers });
      init.body =
        typeof body === "string" || Buffer.isBuffer(body) ? (body as RequestInit["body"]) : JSON.stringify(body);
    }
    return fetch(`${t.httpUrl}${path}`, init);
  }

  async function ok<T = Record<string, unknown>>(method: string, path: string, body?: Body): Promise<T> {
    const res = await send(method, path, body);
    const text = await res.text();
    expect(res.status, `${method} ${path}: ${text}`).toBeLessThan(300);
    return JSON.parse(text) as T;
  }

  /** Every item of a collection, page by page (the largest page is 100). */
  async function listAll(path: string): Promise<Array<Record<string, unknown>>> {
    const all: Array<Record<string, unknown>> = [];
    let after: string | null = null;
    for (;;) {
      const page: { data: Array<Record<string, unknown>>; has_more: boolean; last_id: string | null } = await ok(
        "GET",
        `${path}?limit=100${after ? `&after=${after}` : ""}`,
      );
      all.push(...page.data);
      if (!page.has_more) return all;
      after = page.last_id;
    }
  }

  async function counts(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const c of COLLECTIONS) out[c] = (await listAll(c)).length;
    return out;
  }

  /**
   * The request is rejected with `status` in OpenAI's shape, with the given type/param/code, and no collection
   * changed size.
   */
  async function rejects(
    req: () => Promise<Response>,
    status: number,
    want: { type?: string; param?: string | null; code?: string | null } = {},
  ): Promise<OpenAIErrorResponse> {
    const before = await counts();
    const body = await expectOpenAIError(
      await req(),
      status,
      want.type ?? (status === 404 ? "invalid_request_error" : "invalid_request_error"),
    );
    if ("param" in want) expect(body.error.param, JSON.stringify(body)).toBe(want.param);
    if ("code" in want) expect(body.error.code, JSON.stringify(body)).toBe(want.code);
    expect(await counts(), "nothing written").toEqual(before);
    return body;
  }

  return { send, ok, listAll, counts, rejects };
}

describe("bad input over REST", () => {
  let t: TestPlatform;
  let c: ReturnType<typeof client>;
  let roleId: string;
  let adminId: string;
  let userId: string;
  let keyId: string;
  let baseline: Record<string, number>;

  beforeAll(async () => {
    t = await startTestPlatform();
    c = client(t);
    roleId = (await c.ok<{ id: string }>("POST", "/v1/admin/roles", { name: "member", permissions: [] })).id;
    await c.ok("POST", "/v1/admin/organizations", { name: "DINUM" });
    adminId = (await c.ok<{ id: string }>("GET", "/v1/me")).id;
    userId = (await c.ok<{ id: string }>("POST", "/v1/admin/users", { email: "alice@example.fr", role: roleId })).id;
    keyId = (await c.ok<{ id: string }>("POST", "/v1/me/keys", { name: "existing" })).id;
    baseline = await c.counts();
  });
  afterAll(async () => {
    await t?.close();
  });

  describe("malformed bodies", () => {
    it.each([
      ["/v1/admin/roles", '{"name": "x",'],
      ["/v1/admin/users", "{email: 'a@b.fr'}"],
      ["/v1/admin/organizations", '{"name": "x"} trailing'],
      ["/v1/me/keys", "not json at all"],
      ["/v1/admin/keys", '{"name": "k", "user": "'],
    ])("POST %s with malformed JSON → 400 invalid_json", async (path, raw) => {
      const body = await c.rejects(() => c.send("POST", path, raw), 400, { param: null, code: "invalid_json" });
      expect(body.error.message).toMatch(/not valid JSON/);
    });

    it.each([
      ["an array", "[]"],
      ["an array of objects", '[{"name":"x"}]'],
      ["a string", '"role"'],
      ["a number", "42"],
      ["true", "true"],
      ["null", "null"],
    ])("a JSON body that is %s, not an object → 400", async (_what, raw) => {
      const body = await c.rejects(() => c.send("POST", "/v1/admin/roles", raw), 400, {
        param: null,
        code: "invalid_value",
      });
      expect(body.error.message).toMatch(/must be object/);
    });

    it("an empty body with a JSON content type → 400", async () => {
      await c.rejects(() => c.send("POST", "/v1/admin/organizations", ""), 400, { param: null });
    });

    it.each([
      ["text/plain", "name=x"],
      ["text/plain;charset=UTF-8", '{"name":"sent as text"}'],
      ["application/x-www-form-urlencoded", "name=x"],
      ["application/xml", "<name>x</name>"],
    ])("a body sent as %s → 415 (the API reads JSON only)", async (contentType, raw) => {
      const body = await c.rejects(
        () => c.send("POST", "/v1/admin/organizations", raw, { "content-type": contentType }),
        415,
        { param: null, code: "unsupported_media_type" },
      );
      expect(body.error.message).toMatch(/application\/json/);
    });

    it("bad UTF-8 bytes inside a JSON string → 400 invalid_utf8", async () => {
      const raw = Buffer.concat([Buffer.from('{"name":"bad'), Buffer.from([0xff, 0xfe]), Buffer.from('name"}')]);
      for (const path of ["/v1/admin/organizations", "/v1/admin/roles", "/v1/me/keys"]) {
        const body = await c.rejects(() => c.send("POST", path, raw), 400, { param: null, code: "invalid_utf8" });
        expect(body.error.message).toMatch(/UTF-8/);
      }
    });

    it("an overlong UTF-8 encoding and a lone surrogate are bad UTF-8 too", async () => {
      for (const bytes of [
        [0xc0, 0xaf],
        [0xed, 0xa0, 0x80],
      ]) {
        const raw = Buffer.concat([Buffer.from('{"name":"'), Buffer.from(bytes), Buffer.from('"}')]);
        await c.rejects(() => c.send("POST", "/v1/admin/organizations", raw), 400, { code: "invalid_utf8" });
      }
    });

    it("valid multi-byte UTF-8 is accepted (control: the check is not over-eager)", async () => {
      const org = await c.ok<{ name: string; id: string }>("POST", "/v1/admin/organizations", {
        name: "Ministère ☀ 🇫🇷",
      });
      expect(org.name).toBe("Ministère ☀ 🇫🇷");
      await c.ok("DELETE", `/v1/admin/organizations/${org.id}`);
    });
  });

  describe("wrong types (no coercion of body values)", () => {
    it.each([
      ["/v1/me/keys", { name: 123 }, "name"],
      ["/v1/me/keys", { name: "k", expires: "tomorrow" }, "expires"],
      ["/v1/me/keys", { name: "k", expires: "1999999999" }, "expires"],
      ["/v1/me/keys", { name: "k", expires: 1.5e9 + 0.5 }, "expires"],
      ["/v1/admin/roles", { name: "r", permissions: "admin" }, "permissions"],
      ["/v1/admin/roles", { name: ["r"] }, "name"],
      ["/v1/admin/organizations", { name: true }, "name"],
      ["/v1/admin/users", { email: "bob@example.fr", role: "ROLE", expires: "tomorrow" }, "expires"],
      ["/v1/admin/users", { email: ["bob@example.fr"], role: "ROLE" }, "email"],
      ["/v1/admin/users", { email: "bob@example.fr", role: "ROLE", organization: 7 }, "organization"],
      ["/v1/admin/keys", { name: "k", user: 42 }, "user"],
    ])("POST %s %j → 400 on '%s'", async (path, body, param) => {
      const payload = JSON.parse(JSON.stringify(body).replace('"ROLE"', JSON.stringify(roleId)));
      await c.rejects(() => c.send("POST", path, payload), 400, { param, code: "invalid_value" });
    });

    it("missing required fields name the field", async () => {
      await c.rejects(() => c.send("POST", "/v1/admin/users", { email: "bob@example.fr" }), 400, { param: "role" });
      await c.rejects(() => c.send("POST", "/v1/admin/roles", { permissions: [] }), 400, { param: "name" });
      await c.rejects(() => c.send("POST", "/v1/admin/keys", { name: "k" }), 400, { param: "user" });
      await c.rejects(() => c.send("POST", "/v1/me/keys", {}), 400, { param: "name" });
    });

    it("a wrong type in a PATCH changes nothing", async () => {
      await c.rejects(() => c.send("PATCH", `/v1/admin/users/${userId}`, { name: 5 }), 400, { param: "name" });
      await c.rejects(() => c.send("PATCH", `/v1/admin/users/${userId}`, { expires: "tomorrow" }), 400, {
        param: "expires",
      });
      await c.rejects(() => c.send("PATCH", `/v1/me/keys/${keyId}`, { name: null }), 400, { param: "name" });
      const user = await c.ok("GET", `/v1/admin/users/${userId}`);
      expect(user).toMatchObject({ name: "alice", expires: null });
      expect(await c.ok("GET", `/v1/me/keys/${keyId}`)).toMatchObject({ name: "existing" });
    });
  });

  describe("unknown fields and enum values", () => {
    it.each([
      ["POST", "/v1/admin/users", { email: "bob@example.fr", role: "ROLE", is_admin: true }, "is_admin"],
      ["POST", "/v1/admin/roles", { name: "r2", permissions: [], color: "red" }, "color"],
      ["POST", "/v1/admin/organizations", { name: "o2", siret: "123" }, "siret"],
      ["POST", "/v1/admin/keys", { name: "k", user: "ADMIN", scopes: ["all"] }, "scopes"],
      ["POST", "/v1/me/keys", { name: "k", user: "ADMIN" }, "user"],
      ["PATCH", "/v1/admin/users/USER", { name: "x", permissions: ["admin"] }, "permissions"],
      ["PATCH", "/v1/admin/roles/ROLE", { name: "x", users: 3 }, "users"],
      ["PATCH", "/v1/me", { name: "x", role: "ROLE" }, "role"],
    ])("%s %s with an unknown field → 400 naming it", async (method, rawPath, body, field) => {
      const fill = (s: string) => s.replace("ROLE", roleId).replace("ADMIN", adminId).replace("USER", userId);
      const payload = JSON.parse(fill(JSON.stringify(body)));
      const err = await c.rejects(() => c.send(method, fill(rawPath), payload), 400, {
        param: field,
        code: "invalid_value",
      });
      expect(err.error.message).toContain(`unknown field '${field}'`);
    });

    it("an unknown permission on create → 400 on its index, no role written", async () => {
      await c.rejects(() => c.send("POST", "/v1/admin/roles", { name: "root", permissions: ["superuser"] }), 400, {
        param: "permissions.0",
        code: "invalid_value",
      });
      await c.rejects(() => c.send("POST", "/v1/admin/roles", { name: "root", permissions: ["admin", "ADMIN"] }), 400, {
        param: "permissions.1",
      });
      const roles = await c.listAll("/v1/admin/roles");
      expect(roles.map((r) => r.name)).not.toContain("root");
    });

    it("an unknown permission on update leaves the role as it was", async () => {
      await c.rejects(() => c.send("PATCH", `/v1/admin/roles/${roleId}`, { permissions: ["superuser"] }), 400, {
        param: "permissions.0",
      });
      expect(await c.ok("GET", `/v1/admin/roles/${roleId}`)).toMatchObject({ name: "member", permissions: [] });
    });

    it.each(["/v1/me/keys", "/v1/admin/keys"])("GET %s?state=bogus → 400 on 'state'", async (path) => {
      await c.rejects(() => c.send("GET", `${path}?state=bogus`), 400, { param: "state", code: "invalid_value" });
      // control: a known state is accepted
      await c.ok("GET", `${path}?state=revoked`);
    });
  });

  describe("values the service refuses", () => {
    it.each(["not-an-email", "a@b", "two@@example.fr", "sp ace@example.fr", "@example.fr", "x@.fr"])(
      "user creation with e-mail %j → 400 on 'email'",
      async (email) => {
        await c.rejects(() => c.send("POST", "/v1/admin/users", { email, role: roleId }), 400, {
          param: "email",
          code: "invalid_argument",
        });
      },
    );

    it("user creation with a too-short password → 400 on 'password'", async () => {
      const body = await c.rejects(
        () => c.send("POST", "/v1/admin/users", { email: "carol@example.fr", role: roleId, password: "short" }),
        400,
        { param: "password", code: "invalid_argument" },
      );
      expect(body.error.message).toMatch(/at least 12/);
      const users = await c.listAll("/v1/admin/users");
      expect(users.map((u) => u.email)).not.toContain("carol@example.fr");
    });

    it("user creation with a malformed or unknown role or organization → 400 on the REST field", async () => {
      await c.rejects(() => c.send("POST", "/v1/admin/users", { email: "dan@example.fr", role: "not-a-uuid" }), 400, {
        param: "role",
      });
      await c.rejects(
        () =>
          c.send("POST", "/v1/admin/users", { email: "dan@example.fr", role: "0190a2b4-0000-7000-8000-000000000000" }),
        400,
        { param: "role", code: "role_not_found" },
      );
      await c.rejects(
        () => c.send("POST", "/v1/admin/users", { email: "dan@example.fr", role: roleId, organization: "nope" }),
        400,
        { param: "organization" },
      );
    });

    it("an expiry in the past → 400 on 'expires'", async () => {
      await c.rejects(
        () => c.send("POST", "/v1/admin/users", { email: "eve@example.fr", role: roleId, expires: 1000 }),
        400,
        {
          param: "expires",
        },
      );
      await c.rejects(() => c.send("POST", "/v1/me/keys", { name: "old", expires: 1000 }), 400, {
        param: "expires",
        code: "invalid_expiration",
      });
    });

    it("blank names → 400 on 'name'", async () => {
      await c.rejects(() => c.send("POST", "/v1/admin/roles", { name: "   " }), 400, { param: "name" });
      await c.rejects(() => c.send("POST", "/v1/admin/organizations", { name: "" }), 400, { param: "name" });
      await c.rejects(() => c.send("POST", "/v1/me/keys", { name: "tab\there" }), 400, { param: "name" });
    });
  });

  describe("paging and ids", () => {
    const LISTS = ["/v1/me/keys", "/v1/admin/keys", "/v1/admin/users", "/v1/admin/roles", "/v1/admin/organizations"];

    it.each(LISTS)("%s rejects limit=0, limit=1000, limit=-1, limit=abc with 400 on 'limit'", async (path) => {
      for (const limit of ["0", "1000", "-1", "abc", "2.5"]) {
        await c.rejects(() => c.send("GET", `${path}?limit=${limit}`), 400, { param: "limit", code: "invalid_value" });
      }
      // control: the bounds themselves are accepted
      await c.ok("GET", `${path}?limit=1`);
      await c.ok("GET", `${path}?limit=100`);
    });

    it.each(LISTS)("%s rejects a garbage `after` cursor with 400 on 'after'", async (path) => {
      for (const after of ["garbage", "' OR 1=1 --", "0190a2b4-0000-7000-8000", "x".repeat(65)]) {
        await c.rejects(() => c.send("GET", `${path}?after=${encodeURIComponent(after)}`), 400, { param: "after" });
      }
    });

    it.each([
      "/v1/admin/users/not-a-uuid",
      "/v1/admin/roles/123",
      "/v1/admin/organizations/0190a2b4",
      "/v1/me/keys/sk-not-an-id",
      "/v1/admin/keys/%20",
    ])("GET %s (a non-UUID id) → 404", async (path) => {
      await c.rejects(() => c.send("GET", path), 404, { type: "invalid_request_error" });
    });

    it("PATCH and DELETE with a non-UUID id → 404, nothing changed", async () => {
      await c.rejects(() => c.send("PATCH", "/v1/admin/users/nope", { name: "x" }), 404);
      await c.rejects(() => c.send("PATCH", "/v1/admin/roles/nope", { name: "x" }), 404);
      await c.rejects(() => c.send("PATCH", "/v1/me/keys/nope", { name: "x" }), 404);
      await c.rejects(() => c.send("DELETE", "/v1/admin/users/nope"), 404);
      await c.rejects(() => c.send("DELETE", "/v1/admin/roles/nope"), 404);
      await c.rejects(() => c.send("DELETE", "/v1/admin/organizations/nope"), 404);
      await c.rejects(() => c.send("DELETE", "/v1/admin/keys/nope"), 404);
      expect(await c.ok("GET", `/v1/me/keys/${keyId}`)).toMatchObject({ revoked: null });
    });
  });

  it("after all of the above, the collections hold only what beforeAll created", async () => {
    expect((await c.listAll("/v1/admin/roles")).map((r) => r.name).sort()).toEqual(["admin", "member"]);
    expect((await c.listAll("/v1/admin/organizations")).map((o) => o.name)).toEqual(["DINUM"]);
    expect((await c.listAll("/v1/admin/users")).map((u) => u.email).sort()).toEqual([
      "admin@test.local",
      "alice@example.fr",
    ]);
    expect(await c.counts()).toEqual(baseline);
  });
});

describe("oversized bodies (PASSERELLE_BODY_LIMIT_BYTES=4096)", () => {
  let t: TestPlatform;
  let c: ReturnType<typeof client>;

  beforeAll(async () => {
    t = await startTestPlatform({ env: { PASSERELLE_BODY_LIMIT_BYTES: "4096" } });
    c = client(t);
  });
  afterAll(async () => {
    await t?.close();
  });

  it.each(["/v1/admin/roles", "/v1/admin/organizations", "/v1/admin/users", "/v1/me/keys"])(
    "POST %s with a body over the limit → 413",
    async (path) => {
      const raw = JSON.stringify({ name: "x".repeat(5000) });
      const body = await c.rejects(() => c.send("POST", path, raw), 413, { param: null, code: "request_too_large" });
      expect(body.error.message).toMatch(/too large/);
    },
  );

  it("a chunked body (no content-length) over the limit → 413", async () => {
    const chunk = new TextEncoder().encode(`{"name":"${"y".repeat(1000)}`);
    const stream = new ReadableStream<Uint8Array>({
      start(ctl) {
        for (let i = 0; i < 6; i++) ctl.enqueue(chunk);
        ctl.close();
      },
    });
    await c.rejects(
      () =>
        fetch(`${t.httpUrl}/v1/admin/organizations`, {
          method: "POST",
          headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "application/json" },
          body: stream,
          duplex: "half",
        } as RequestInit),
      413,
      { code: "request_too_large" },
    );
  });

  it("a body just under the limit is read (and then judged on its content: 400, not 413)", async () => {
    const raw = JSON.stringify({ name: "z".repeat(4000) });
    expect(Buffer.byteLength(raw)).toBeLessThan(4096);
    await c.rejects(() => c.send("POST", "/v1/admin/organizations", raw), 400, { param: "name" });
  });

  it("the limit counts bytes, not characters", async () => {
    // 1500 × "é" = 3000 bytes + 1500 × "€" = 4500 bytes: under 4096 characters, over 4096 bytes
    const raw = JSON.stringify({ name: "é€".repeat(1500) });
    expect(raw.length).toBeLessThan(4096);
    await c.rejects(() => c.send("POST", "/v1/admin/organizations", raw), 413, { code: "request_too_large" });
  });
});

describe("bad input over Connect RPC", () => {
  let t: TestPlatform;
  let c: ReturnType<typeof client>;
  let roleId: string;

  const accounts = (binary: boolean) => {
    const auth: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${t.adminKey}`);
      return next(req);
    };
    return createClient(
      AccountService,
      createConnectTransport({ baseUrl: t.httpUrl, httpVersion: "1.1", useBinaryFormat: binary, interceptors: [auth] }),
    );
  };

  /** The call fails with `code` (and the given ErrorInfo param), and no collection changed size. */
  async function rpcRejects(call: () => Promise<unknown>, code: Code, param?: string): Promise<ConnectError> {
    const before = await c.counts();
    const err = await call().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, "the call should have failed").toBeInstanceOf(ConnectError);
    const ce = err as ConnectError;
    expect(Code[ce.code], ce.message).toBe(Code[code]);
    if (param !== undefined) expect(ce.findDetails(ErrorInfoSchema)[0]?.param).toBe(param);
    expect(await c.counts(), "nothing written").toEqual(before);
    return ce;
  }

  beforeAll(async () => {
    t = await startTestPlatform();
    c = client(t);
    roleId = (await c.ok<{ id: string }>("POST", "/v1/admin/roles", { name: "member" })).id;
  });
  afterAll(async () => {
    await t?.close();
  });

  it.each([false, true])("CreateUser with a bad e-mail → InvalidArgument (binary: %s)", async (binary) => {
    const ce = await rpcRejects(
      () => accounts(binary).createUser({ email: "not an email", roleId }),
      Code.InvalidArgument,
      "email",
    );
    expect(ce.findDetails(ErrorInfoSchema)[0]?.reason).toBe("INVALID_ARGUMENT");
  });

  it("CreateUser with a too-short password → InvalidArgument on 'password'", async () => {
    await rpcRejects(
      () => accounts(false).createUser({ email: "frank@example.fr", roleId, password: "1234" }),
      Code.InvalidArgument,
      "password",
    );
  });

  it.each([false, true])("CreateRole with an unknown enum number → InvalidArgument (binary: %s)", async (binary) => {
    const ce = await rpcRejects(
      () => accounts(binary).createRole({ name: "ghost", permissions: [99 as Permission] }),
      Code.InvalidArgument,
      "permissions",
    );
    expect(ce.findDetails(ErrorInfoSchema)[0]?.reason).toBe("UNKNOWN_PERMISSION");
  });

  it("CreateRole with PERMISSION_UNSPECIFIED → InvalidArgument", async () => {
    await rpcRejects(
      () => accounts(false).createRole({ name: "ghost", permissions: [0 as Permission] }),
      Code.InvalidArgument,
      "permissions",
    );
  });

  it.each([false, true])("ListUsers with page_size -1 → InvalidArgument (binary: %s)", async (binary) => {
    await rpcRejects(() => accounts(binary).listUsers({ pageSize: -1 }), Code.InvalidArgument, "page_size");
  });

  it("ListRoles with a garbage page_token → InvalidArgument on 'page_token'", async () => {
    await rpcRejects(() => accounts(false).listRoles({ pageToken: "garbage" }), Code.InvalidArgument, "page_token");
  });

  /** A hand-written Connect unary JSON request, as a browser or curl would send it. */
  async function rawConnect(method: string, body: string | Buffer, contentType = "application/json") {
    return fetch(`${t.httpUrl}/passerelle.accounts.v1.AccountService/${method}`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.adminKey}`, "content-type": contentType, "connect-protocol-version": "1" },
      body: body as RequestInit["body"],
    });
  }

  async function expectConnectError(
    res: Response,
    status: number,
    code: string,
  ): Promise<{ code: string; message?: string }> {
    const text = await res.text();
    expect(res.status, text).toBe(status);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const body = JSON.parse(text) as { code: string; message?: string };
    expect(body.code, text).toBe(code);
    return body;
  }

  it.each([
    ["a wrong type", '{"name": 5}'],
    ["a wrong type in a repeated enum", '{"name": "r", "permissions": "PERMISSION_ADMIN"}'],
    ["an unknown enum name", '{"name": "r", "permissions": ["PERMISSION_SUPERUSER"]}'],
    ["an unknown field", '{"name": "r", "color": "red"}'],
    ["malformed JSON", '{"name": "r"'],
    ["a non-object", "[]"],
  ])("a raw Connect JSON CreateRole with %s → HTTP 400, code invalid_argument", async (_what, raw) => {
    const before = await c.counts();
    await expectConnectError(await rawConnect("CreateRole", raw), 400, "invalid_argument");
    expect(await c.counts()).toEqual(before);
  });

  it("a raw Connect JSON CreateOrganization with bad UTF-8 → HTTP 400, code invalid_argument", async () => {
    const before = await c.counts();
    const raw = Buffer.concat([Buffer.from('{"name":"bad'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
    await expectConnectError(await rawConnect("CreateOrganization", raw), 400, "invalid_argument");
    expect(await c.counts()).toEqual(before);
  });

  it("a raw Connect binary CreateOrganization with bad UTF-8 is refused, nothing written", async () => {
    // field 1 (name), length-delimited: "bad" + 0xff 0xfe
    const name = Buffer.concat([Buffer.from("bad"), Buffer.from([0xff, 0xfe])]);
    const before = await c.counts();
    const res = await rawConnect(
      "CreateOrganization",
      Buffer.concat([Buffer.from([0x0a, name.length]), name]),
      "application/proto",
    );
    const body = (await res.json()) as { code: string };
    // connect-es reports any binary parse failure as `internal` (HTTP 500); connect-go says invalid_argument.
    // What matters here: refused, and nothing stored with U+FFFD in it.
    expect(res.status).not.toBe(200);
    expect(body.code).toMatch(/^(invalid_argument|internal)$/);
    expect(await c.counts()).toEqual(before);
  });

  it("a raw Connect JSON ListApiKeys with an unknown state name → invalid_argument (not every key)", async () => {
    await expectConnectError(
      await rawConnect("ListApiKeys", '{"state": "API_KEY_STATE_BOGUS"}'),
      400,
      "invalid_argument",
    );
  });

  it("a raw Connect JSON CreateUser with a wrong type → 400", async () => {
    const before = await c.counts();
    await expectConnectError(
      await rawConnect("CreateUser", JSON.stringify({ email: ["x@example.fr"], roleId })),
      400,
      "invalid_argument",
    );
    expect(await c.counts()).toEqual(before);
  });
});
