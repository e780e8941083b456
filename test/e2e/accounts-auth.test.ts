import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AccountClient,
  bearer,
  connectClient,
  connectCode,
  createOrganization,
  createRole,
  createUser,
  expectOpenAIError,
  grpcWebClient,
  type Json,
  rest,
} from "../support/accounts.js";
import { type AccountGrpcClient, createAccountGrpcClient, grpc, grpcCode } from "../support/grpc.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";

/** Authentication end to end: the same key on REST, Connect, gRPC-web and gRPC, on real sockets. */
describe("accounts: authentication on every surface", () => {
  let t: TestPlatform;
  let connect: AccountClient;
  let grpcWeb: AccountClient;
  let g: AccountGrpcClient;
  let plainRole: Json;

  beforeAll(async () => {
    // With the real Redis: revocations also go through its pub/sub invalidation path.
    t = await startTestPlatform({ redis: true });
    connect = connectClient(t);
    grpcWeb = grpcWebClient(t);
    g = createAccountGrpcClient(t.grpcUrl);
    plainRole = await createRole(t, ["read_metrics"]);
  });
  afterAll(async () => {
    g?.close();
    await t?.close();
  });

  it("a new user logs in, creates a key, uses it on all four surfaces, and a revocation shuts all four at once", async () => {
    const org = await createOrganization(t);
    const email = `Alice.${Date.now()}@Example.test`;
    const password = "alice's long password";
    const created = await rest(t, "POST", "/v1/admin/users", {
      key: t.adminKey,
      body: { email, name: "Alice", password, role: plainRole.id, organization: org.id },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({
      object: "user",
      email: email.toLowerCase(),
      role: plainRole.id,
      organization: org.id,
    });
    expect(created.body).not.toHaveProperty("password");
    expect(created.body).not.toHaveProperty("password_hash");

    const login = await rest(t, "POST", "/v1/auth/login", { body: { email, password } });
    expect(login.status, JSON.stringify(login.body)).toBe(200);
    expect(login.body).toMatchObject({ object: "api_key", kind: "session", user: created.body.id });
    expect(login.body.key).toMatch(/^sk-/);
    const session: string = login.body.key;

    const made = await rest(t, "POST", "/v1/me/keys", { key: session, body: { name: "laptop" } });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    const key: string = made.body.key;
    const keyId: string = made.body.id;
    expect(key).toMatch(/^sk-/);
    expect(made.body).toMatchObject({
      object: "api_key",
      name: "laptop",
      kind: "standard",
      user: created.body.id,
      revoked: null,
    });

    // REST
    const me = await rest(t, "GET", "/v1/me", { key });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({
      object: "me",
      id: created.body.id,
      email: email.toLowerCase(),
      name: "Alice",
      organization: { id: org.id, name: org.name },
      role: { id: plainRole.id, name: plainRole.name },
      permissions: ["read_metrics"],
      expires: null,
      expired: false,
      key_id: keyId,
    });
    // Connect
    const viaConnect = await connect.getMe({}, bearer(key));
    expect(viaConnect.user?.id).toBe(created.body.id);
    expect(viaConnect.apiKeyId).toBe(keyId);
    expect(viaConnect.organization?.id).toBe(org.id);
    // gRPC-web on the HTTP/1.1 port
    const viaGrpcWeb = await grpcWeb.getMe({}, bearer(key));
    expect(viaGrpcWeb.user?.email).toBe(email.toLowerCase());
    expect(viaGrpcWeb.apiKeyId).toBe(keyId);
    // gRPC (grpc-js) on the h2c port
    const viaGrpc = (await g.call("GetMe", {}, key)) as Json;
    expect(viaGrpc.user.id).toBe(created.body.id);
    expect(viaGrpc.apiKeyId).toBe(keyId);
    expect(viaGrpc.role.permissions).toEqual(["PERMISSION_READ_METRICS"]);
    expect(viaGrpc.expired).toBe(false);

    const revoked = await rest(t, "DELETE", `/v1/me/keys/${keyId}`, { key: session });
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    expect(revoked.body.revoked).toEqual(expect.any(Number));

    // No sleep: revocation is effective at once, although every surface has just cached the key.
    const after = await rest(t, "GET", "/v1/me", { key });
    expectOpenAIError(after, 401, "invalid_request_error");
    expect(after.body.error.code).toBe("api_key_revoked");
    expect(await connectCode(connect.getMe({}, bearer(key)))).toBe(Code.Unauthenticated);
    expect(await connectCode(grpcWeb.getMe({}, bearer(key)))).toBe(Code.Unauthenticated);
    expect(await grpcCode(g.call("GetMe", {}, key))).toBe(grpc.status.UNAUTHENTICATED);

    // The session key is untouched by the revocation of another key.
    expect((await rest(t, "GET", "/v1/me", { key: session })).status).toBe(200);
  });

  it("refuses a missing key, an unknown key and a malformed Authorization header with 401 / Unauthenticated", async () => {
    const garbage = "sk-this-key-does-not-exist-0123456789";
    const missing = await rest(t, "GET", "/v1/me");
    expectOpenAIError(missing, 401, "invalid_request_error");
    expect(missing.body.error.code).toBe("missing_api_key");
    const unknown = await rest(t, "GET", "/v1/me", { key: garbage });
    expectOpenAIError(unknown, 401, "invalid_request_error");
    expect(unknown.body.error.code).toBe("invalid_api_key");
    for (const authorization of ["Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", t.adminKey, "Token sk-abc"]) {
      const res = await rest(t, "GET", "/v1/me", { authorization });
      expectOpenAIError(res, 401, "invalid_request_error");
    }
    // A route that would be valid for an admin is still a 401 first.
    expectOpenAIError(await rest(t, "GET", "/v1/admin/users", { key: garbage }), 401, "invalid_request_error");
    expectOpenAIError(await rest(t, "POST", "/v1/me/keys", { body: { name: "x" } }), 401, "invalid_request_error");

    for (const client of [connect, grpcWeb]) {
      expect(await connectCode(client.getMe({}))).toBe(Code.Unauthenticated);
      expect(await connectCode(client.getMe({}, bearer(garbage)))).toBe(Code.Unauthenticated);
      expect(await connectCode(client.getMe({}, { headers: { authorization: "Basic dXNlcjpwYXNz" } }))).toBe(
        Code.Unauthenticated,
      );
      expect(await connectCode(client.listUsers({}, bearer(garbage)))).toBe(Code.Unauthenticated);
    }
    expect(await grpcCode(g.call("GetMe", {}))).toBe(grpc.status.UNAUTHENTICATED);
    expect(await grpcCode(g.call("GetMe", {}, garbage))).toBe(grpc.status.UNAUTHENTICATED);
    expect(await grpcCode(g.call("GetMe", {}, undefined, { authorization: "Basic dXNlcjpwYXNz" }))).toBe(
      grpc.status.UNAUTHENTICATED,
    );
    expect(await grpcCode(g.call("ListUsers", {}, garbage))).toBe(grpc.status.UNAUTHENTICATED);
  });

  it("an expired user can read /v1/me only; everything else is 403 / PermissionDenied", async () => {
    const u = await createUser(t, { role: plainRole.id });
    // Warm every cache with the still-valid user first: the expiry must win over cached principals.
    expect((await rest(t, "GET", "/v1/me/keys", { key: u.key })).status).toBe(200);
    await connect.listApiKeys({}, bearer(u.key));
    await g.call("ListApiKeys", {}, u.key);

    const past = Math.floor(Date.now() / 1000) - 60;
    const refusedOnCreate = await rest(t, "POST", "/v1/admin/users", {
      key: t.adminKey,
      body: { email: `late-${u.email}`, role: plainRole.id, expires: past },
    });
    expectOpenAIError(refusedOnCreate, 400, "invalid_request_error");
    const patched = await rest(t, "PATCH", `/v1/admin/users/${u.id}`, { key: t.adminKey, body: { expires: past } });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(patched.body.expires).toBe(past);

    for (const path of ["/v1/me", "/v1/me/info"]) {
      const me = await rest(t, "GET", path, { key: u.key });
      expect(me.status, path).toBe(200);
      expect(me.body).toMatchObject({ id: u.id, expired: true, expires: past });
    }
    expect((await connect.getMe({}, bearer(u.key))).expired).toBe(true);
    expect((await grpcWeb.getMe({}, bearer(u.key))).expired).toBe(true);
    expect(((await g.call("GetMe", {}, u.key)) as Json).expired).toBe(true);

    const refused: [string, string, unknown?][] = [
      ["GET", "/v1/me/keys"],
      ["POST", "/v1/me/keys", { name: "more" }],
      ["GET", `/v1/me/keys/${u.keyId}`],
      ["PATCH", `/v1/me/keys/${u.keyId}`, { name: "renamed" }],
      ["DELETE", `/v1/me/keys/${u.keyId}`],
      ["PATCH", "/v1/me", { name: "New name" }],
      ["GET", "/v1/admin/users"],
    ];
    for (const [method, path, body] of refused) {
      const res = await rest(t, method, path, { key: u.key, body });
      expectOpenAIError(res, 403, "permission_error");
      expect(res.body.error.code, `${method} ${path}`).toBe("account_expired");
    }
    for (const client of [connect, grpcWeb]) {
      expect(await connectCode(client.listApiKeys({}, bearer(u.key)))).toBe(Code.PermissionDenied);
      expect(await connectCode(client.updateMe({ name: "x" }, bearer(u.key)))).toBe(Code.PermissionDenied);
      expect(await connectCode(client.createApiKey({ name: "x" }, bearer(u.key)))).toBe(Code.PermissionDenied);
    }
    expect(await grpcCode(g.call("ListApiKeys", {}, u.key))).toBe(grpc.status.PERMISSION_DENIED);
    expect(await grpcCode(g.call("UpdateMe", { name: "x" }, u.key))).toBe(grpc.status.PERMISSION_DENIED);
    // Nothing was written by the refused calls.
    const keys = await rest(t, "GET", `/v1/admin/keys?user=${u.id}`, { key: t.adminKey });
    expect(keys.body.data.map((k: Json) => [k.name, k.revoked])).toEqual([["fixture", null]]);
    expect((await rest(t, "GET", `/v1/admin/users/${u.id}`, { key: t.adminKey })).body.name).toBe(u.user.name);

    // Lifting the expiry restores access at once.
    const lifted = await rest(t, "PATCH", `/v1/admin/users/${u.id}`, { key: t.adminKey, body: { expires: null } });
    expect(lifted.body.expires).toBeNull();
    expect((await rest(t, "GET", "/v1/me/keys", { key: u.key })).status).toBe(200);
    expect(((await g.call("GetMe", {}, u.key)) as Json).expired).toBe(false);
  });

  it("every REST response carries x-request-id, and a well-formed client id is echoed", async () => {
    const cases = [
      await rest(t, "GET", "/v1/me", { key: t.adminKey }),
      await rest(t, "GET", "/v1/me"),
      await rest(t, "GET", "/v1/admin/users/not-a-uuid", { key: t.adminKey }),
      await rest(t, "POST", "/v1/me/keys", { key: t.adminKey, body: { name: 42 } }),
      await rest(t, "GET", "/v1/no-such-route", { key: t.adminKey }),
      await rest(t, "POST", "/v1/auth/login", { body: { email: "nobody@example.test", password: "wrong password!" } }),
    ];
    expect(cases.map((c) => c.status)).toEqual([200, 401, 404, 400, 404, 401]);
    const ids = cases.map((c) => c.headers.get("x-request-id"));
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
    expect(new Set(ids).size).toBe(ids.length);

    for (const [key, status] of [
      [t.adminKey, 200],
      [undefined, 401],
      ["sk-unknown-key-0000000000000000", 401],
    ] as const) {
      const res = await rest(t, "GET", "/v1/me", { key, headers: { "x-request-id": "my-id-123" } });
      expect(res.status).toBe(status);
      expect(res.headers.get("x-request-id")).toBe("my-id-123");
    }
    // A malformed id is replaced, never reflected.
    const bad = await rest(t, "GET", "/v1/me", { key: t.adminKey, headers: { "x-request-id": "bad id <script>" } });
    expect(bad.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);

    let seen: string | null = null;
    await connect.getMe(
      {},
      {
        headers: { authorization: `Bearer ${t.adminKey}`, "x-request-id": "my-id-123" },
        onHeader: (h) => (seen = h.get("x-request-id")),
      },
    );
    expect(seen).toBe("my-id-123");
    let generated: string | null = null;
    await connect.getMe({}, { ...bearer(t.adminKey), onHeader: (h) => (generated = h.get("x-request-id")) });
    expect(generated).toMatch(/^[0-9a-f-]{36}$/);
    const failed = await connect.getMe({}, { headers: { "x-request-id": "my-id-456" } }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(ConnectError);
    expect((failed as ConnectError).metadata.get("x-request-id")).toBe("my-id-456");
  });

  it("answers a Connect-web CORS preflight with 204 and the allow headers", async () => {
    const res = await fetch(`${t.httpUrl}/passerelle.accounts.v1.AccountService/GetMe`, {
      method: "OPTIONS",
      headers: {
        origin: "http://example.test",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,connect-protocol-version,authorization",
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toMatch(/^(\*|http:\/\/example\.test)$/);
    expect(res.headers.get("access-control-allow-methods")?.split(/,\s*/)).toContain("POST");
    const allowed = (res.headers.get("access-control-allow-headers") ?? "").toLowerCase().split(/,\s*/);
    expect(allowed).toEqual(expect.arrayContaining(["content-type", "connect-protocol-version", "authorization"]));

    // The actual cross-origin call then exposes what a browser client needs.
    const call = await fetch(`${t.httpUrl}/passerelle.accounts.v1.AccountService/GetMe`, {
      method: "POST",
      headers: {
        origin: "http://example.test",
        "content-type": "application/json",
        "connect-protocol-version": "1",
        authorization: `Bearer ${t.adminKey}`,
      },
      body: "{}",
    });
    expect(call.status).toBe(200);
    expect(call.headers.get("access-control-allow-origin")).toMatch(/^(\*|http:\/\/example\.test)$/);
    expect((call.headers.get("access-control-expose-headers") ?? "").toLowerCase()).toContain("x-request-id");
    expect(call.headers.get("x-request-id")).toBeTruthy();
  });
});
