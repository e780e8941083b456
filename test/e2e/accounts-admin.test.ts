import { Code } from "@connectrpc/connect";
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
  type Json,
  rest,
  type TestUser,
  uniq,
} from "../support/accounts.js";
import { type AccountGrpcClient, createAccountGrpcClient, grpc, grpcCode } from "../support/grpc.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";

/** Isolation between users, the admin API's permission wall, referential conflicts and the key lifecycle. */
describe("accounts: isolation, admin API and keys", () => {
  let t: TestPlatform;
  let connect: AccountClient;
  let g: AccountGrpcClient;
  let plainRole: Json;
  let a: TestUser;
  let b: TestUser;

  beforeAll(async () => {
    t = await startTestPlatform();
    connect = connectClient(t);
    g = createAccountGrpcClient(t.grpcUrl);
    plainRole = await createRole(t, ["create_public_collection", "read_metrics"]);
    a = await createUser(t, { role: plainRole.id });
    b = await createUser(t, { role: plainRole.id });
  });
  afterAll(async () => {
    g?.close();
    await t?.close();
  });

  it("user A can neither see, read, rename nor revoke user B's keys; an admin can", async () => {
    const bKey = await rest(t, "POST", "/v1/me/keys", { key: b.key, body: { name: "b-secret" } });
    expect(bKey.status).toBe(201);
    const id: string = bKey.body.id;

    const aList = await rest(t, "GET", "/v1/me/keys?limit=100", { key: a.key });
    expect(aList.status).toBe(200);
    expect(aList.body.data.map((k: Json) => k.user)).toEqual([a.id]);
    expect(aList.body.data.map((k: Json) => k.id)).not.toContain(id);
    for (const [state] of [["active"], ["revoked"], ["expired"]]) {
      const filtered = await rest(t, "GET", `/v1/me/keys?state=${state}`, { key: a.key });
      expect(filtered.body.data.every((k: Json) => k.user === a.id)).toBe(true);
    }

    const attempts = [
      await rest(t, "GET", `/v1/me/keys/${id}`, { key: a.key }),
      await rest(t, "PATCH", `/v1/me/keys/${id}`, { key: a.key, body: { name: "pwned" } }),
      await rest(t, "DELETE", `/v1/me/keys/${id}`, { key: a.key }),
    ];
    for (const res of attempts) expectOpenAIError(res, 404, "invalid_request_error");
    // Same answer as for a key that does not exist at all: existence is not leaked.
    const ghost = await rest(t, "GET", "/v1/me/keys/01900000-0000-7000-8000-000000000000", { key: a.key });
    expectOpenAIError(ghost, 404, "invalid_request_error");
    expect(ghost.body.error.code).toBe(attempts[0]?.body.error.code);
    // Over RPC too, including an explicit owner scope of B.
    expect(await connectCode(connect.getApiKey({ id }, bearer(a.key)))).toBe(Code.NotFound);
    expect(await connectCode(connect.revokeApiKey({ id }, bearer(a.key)))).toBe(Code.NotFound);
    expect(await connectCode(connect.getApiKey({ id, userId: b.id }, bearer(a.key)))).toBe(Code.PermissionDenied);
    expect(await connectCode(connect.listApiKeys({ userId: b.id }, bearer(a.key)))).toBe(Code.PermissionDenied);
    expect(await grpcCode(g.call("UpdateApiKey", { id, name: "pwned" }, a.key))).toBe(grpc.status.NOT_FOUND);
    expect(await grpcCode(g.call("CreateApiKey", { name: "for b", userId: b.id }, a.key))).toBe(
      grpc.status.PERMISSION_DENIED,
    );

    // B's key is untouched and still works.
    const still = await rest(t, "GET", `/v1/me/keys/${id}`, { key: b.key });
    expect(still.body).toMatchObject({ id, name: "b-secret", revoked: null });
    expect((await rest(t, "GET", "/v1/me", { key: bKey.body.key })).status).toBe(200);

    // An admin manages it through /v1/admin/keys.
    const seen = await rest(t, "GET", `/v1/admin/keys/${id}`, { key: t.adminKey });
    expect(seen.body).toMatchObject({ id, user: b.id, name: "b-secret" });
    const listed = await rest(t, "GET", `/v1/admin/keys?user=${b.id}&limit=100`, { key: t.adminKey });
    expect(listed.body.data.map((k: Json) => k.id)).toContain(id);
    const all = await rest(t, "GET", "/v1/admin/keys?limit=100", { key: t.adminKey });
    expect(all.body.data.map((k: Json) => k.user)).toEqual(expect.arrayContaining([a.id, b.id]));
    expect(all.body.data.map((k: Json) => k.id)).toContain(id);
    const renamed = await rest(t, "PATCH", `/v1/admin/keys/${id}`, {
      key: t.adminKey,
      body: { name: "renamed by admin" },
    });
    expect(renamed.body.name).toBe("renamed by admin");
    const revoked = await rest(t, "DELETE", `/v1/admin/keys/${id}`, { key: t.adminKey });
    expect(revoked.status).toBe(200);
    expect(revoked.body.revoked).toEqual(expect.any(Number));
    expectOpenAIError(await rest(t, "GET", "/v1/me", { key: bKey.body.key }), 401, "invalid_request_error");
    // An admin may name any owner, themselves included.
    const adminId: string = (await rest(t, "GET", "/v1/me", { key: t.adminKey })).body.id;
    const own = await rest(t, "POST", "/v1/admin/keys", { key: t.adminKey, body: { name: "own", user: adminId } });
    expect(own.status, JSON.stringify(own.body)).toBe(201);
    expect(own.body.user).toBe(adminId);
    const ownList = await rest(t, "GET", `/v1/admin/keys?user=${adminId}`, { key: t.adminKey });
    expect(ownList.body.data.map((k: Json) => k.id)).toContain(own.body.id);
  });

  it("a non-admin gets 403 on every /v1/admin/* route and PermissionDenied on every admin RPC", async () => {
    const role = await createRole(t);
    const org = await createOrganization(t);
    // Real ids, so that a 404 cannot stand in for the permission check.
    const ids: Record<string, string> = { users: b.id, roles: role.id, organizations: org.id, keys: b.keyId };
    const bodies: Record<string, { create: unknown; update: unknown }> = {
      users: {
        create: { email: `${uniq("x")}@example.test`, role: plainRole.id },
        update: { role: plainRole.id, name: "hacked" },
      },
      roles: { create: { name: uniq("evil"), permissions: ["admin"] }, update: { permissions: ["admin"] } },
      organizations: { create: { name: uniq("evil") }, update: { name: uniq("evil") } },
      keys: { create: { name: "evil", user: b.id }, update: { name: "evil" } },
    };
    const routes: [string, string, unknown?][] = [];
    for (const [kind, id] of Object.entries(ids)) {
      routes.push(
        ["GET", `/v1/admin/${kind}`],
        ["POST", `/v1/admin/${kind}`, bodies[kind]?.create],
        ["GET", `/v1/admin/${kind}/${id}`],
        ["PATCH", `/v1/admin/${kind}/${id}`, bodies[kind]?.update],
        ["DELETE", `/v1/admin/${kind}/${id}`],
      );
    }
    // The caller's own id must not open the admin key routes either.
    routes.push(["POST", "/v1/admin/keys", { name: "mine", user: a.id }], ["GET", `/v1/admin/keys?user=${a.id}`]);
    const answers = [];
    for (const [method, path, body] of routes) {
      const res = await rest(t, method, path, { key: a.key, body });
      answers.push(`${res.status} ${method} ${path.replace(/\/[0-9a-f-]{36}/, "/{id}")}`);
      if (res.status === 403) expectOpenAIError(res, 403, "permission_error");
    }
    expect(answers).toEqual(routes.map(([m, p]) => `403 ${m} ${p.replace(/\/[0-9a-f-]{36}/, "/{id}")}`));

    const rpcs: [string, Record<string, unknown>][] = [
      ["CreateUser", { email: `${uniq("y")}@example.test`, roleId: plainRole.id }],
      ["GetUser", { id: b.id }],
      ["ListUsers", {}],
      ["UpdateUser", { id: b.id, name: "hacked" }],
      ["DeleteUser", { id: b.id }],
      ["CreateRole", { name: uniq("evil"), permissions: ["PERMISSION_ADMIN"] }],
      ["GetRole", { id: role.id }],
      ["ListRoles", {}],
      ["UpdateRole", { id: plainRole.id, permissions: { permissions: ["PERMISSION_ADMIN"] } }],
      ["DeleteRole", { id: role.id }],
      ["CreateOrganization", { name: uniq("evil") }],
      ["GetOrganization", { id: org.id }],
      ["ListOrganizations", {}],
      ["UpdateOrganization", { id: org.id, name: "evil" }],
      ["DeleteOrganization", { id: org.id }],
      ["ListApiKeys", { userId: "-" }],
      ["GetApiKey", { id: b.keyId, userId: "-" }],
      ["RevokeApiKey", { id: b.keyId, userId: "-" }],
    ];
    const grpcAnswers = [];
    for (const [method, req] of rpcs) {
      grpcAnswers.push(`${grpc.status[await grpcCode(g.call(method, req, a.key))]} ${method}`);
    }
    expect(grpcAnswers).toEqual(rpcs.map(([m]) => `PERMISSION_DENIED ${m}`));
    const connectAnswers = [
      await connectCode(
        connect.createUser({ email: `${uniq("z")}@example.test`, roleId: plainRole.id }, bearer(a.key)),
      ),
      await connectCode(connect.getUser({ id: b.id }, bearer(a.key))),
      await connectCode(connect.listUsers({}, bearer(a.key))),
      await connectCode(connect.updateUser({ id: b.id, name: "hacked" }, bearer(a.key))),
      await connectCode(connect.deleteUser({ id: b.id }, bearer(a.key))),
      await connectCode(connect.createRole({ name: uniq("evil") }, bearer(a.key))),
      await connectCode(connect.getRole({ id: role.id }, bearer(a.key))),
      await connectCode(connect.listRoles({}, bearer(a.key))),
      await connectCode(connect.updateRole({ id: role.id, name: "evil" }, bearer(a.key))),
      await connectCode(connect.deleteRole({ id: role.id }, bearer(a.key))),
      await connectCode(connect.createOrganization({ name: uniq("evil") }, bearer(a.key))),
      await connectCode(connect.getOrganization({ id: org.id }, bearer(a.key))),
      await connectCode(connect.listOrganizations({}, bearer(a.key))),
      await connectCode(connect.updateOrganization({ id: org.id, name: "evil" }, bearer(a.key))),
      await connectCode(connect.deleteOrganization({ id: org.id }, bearer(a.key))),
      await connectCode(connect.listApiKeys({ userId: "-" }, bearer(a.key))),
    ];
    expect(connectAnswers.map((c) => Code[c])).toEqual(connectAnswers.map(() => Code[Code.PermissionDenied]));

    // Nothing changed: B, the role, the organization and B's key are as they were.
    const bNow = await rest(t, "GET", `/v1/admin/users/${b.id}`, { key: t.adminKey });
    expect(bNow.body).toMatchObject({ name: b.user.name, role: plainRole.id });
    expect((await rest(t, "GET", `/v1/admin/roles/${plainRole.id}`, { key: t.adminKey })).body.permissions).toEqual(
      plainRole.permissions,
    );
    expect((await rest(t, "GET", `/v1/admin/organizations/${org.id}`, { key: t.adminKey })).body.name).toBe(org.name);
    expect((await rest(t, "GET", "/v1/me", { key: b.key })).status).toBe(200);
    const aKeys = await rest(t, "GET", "/v1/me/keys?limit=100", { key: a.key });
    expect(aKeys.body.data.map((k: Json) => k.name)).not.toContain("mine");
  });

  it("refuses to delete a role or an organization that still has users (409), then deletes it", async () => {
    const role = await createRole(t);
    const org = await createOrganization(t);
    const u = await createUser(t, { role: role.id, organization: org.id });
    expect((await rest(t, "GET", `/v1/admin/roles/${role.id}`, { key: t.adminKey })).body.users).toBe(1);

    const roleConflict = await rest(t, "DELETE", `/v1/admin/roles/${role.id}`, { key: t.adminKey });
    expectOpenAIError(roleConflict, 409, "conflict_error");
    const orgConflict = await rest(t, "DELETE", `/v1/admin/organizations/${org.id}`, { key: t.adminKey });
    expectOpenAIError(orgConflict, 409, "conflict_error");
    expect(await connectCode(connect.deleteRole({ id: role.id }, bearer(t.adminKey)))).toBe(Code.FailedPrecondition);
    expect(await grpcCode(g.call("DeleteOrganization", { id: org.id }, t.adminKey))).toBe(
      grpc.status.FAILED_PRECONDITION,
    );
    // Both still there, the user still works.
    expect((await rest(t, "GET", `/v1/admin/roles/${role.id}`, { key: t.adminKey })).status).toBe(200);
    expect((await rest(t, "GET", `/v1/admin/organizations/${org.id}`, { key: t.adminKey })).status).toBe(200);
    expect((await rest(t, "GET", "/v1/me", { key: u.key })).body.organization).toEqual({ id: org.id, name: org.name });

    const moved = await rest(t, "PATCH", `/v1/admin/users/${u.id}`, {
      key: t.adminKey,
      body: { role: plainRole.id, organization: null },
    });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    expect(moved.body).toMatchObject({ role: plainRole.id, organization: null });

    const roleGone = await rest(t, "DELETE", `/v1/admin/roles/${role.id}`, { key: t.adminKey });
    expect({ status: roleGone.status, body: roleGone.body }).toEqual({
      status: 200,
      body: { id: role.id, object: "role.deleted", deleted: true },
    });
    const orgGone = await rest(t, "DELETE", `/v1/admin/organizations/${org.id}`, { key: t.adminKey });
    expect({ status: orgGone.status, body: orgGone.body }).toEqual({
      status: 200,
      body: { id: org.id, object: "organization.deleted", deleted: true },
    });
    expectOpenAIError(
      await rest(t, "GET", `/v1/admin/roles/${role.id}`, { key: t.adminKey }),
      404,
      "invalid_request_error",
    );
    expectOpenAIError(
      await rest(t, "DELETE", `/v1/admin/organizations/${org.id}`, { key: t.adminKey }),
      404,
      "invalid_request_error",
    );
    const me = await rest(t, "GET", "/v1/me", { key: u.key });
    expect(me.body).toMatchObject({ organization: null, role: { id: plainRole.id } });
  });

  it("shows a key once, masks it afterwards, renames, revokes, filters by state and pages", async () => {
    const owner = await createUser(t, { role: plainRole.id });
    const made: Json[] = [];
    for (let i = 0; i < 7; i++) {
      const res = await rest(t, "POST", "/v1/me/keys", { key: owner.key, body: { name: `k${i}` } });
      expect(res.status).toBe(201);
      expect(res.body.key).toMatch(/^sk-[A-Za-z0-9_-]{20,}$/);
      expect(res.body.masked_key).not.toBe(res.body.key);
      expect(res.body.key.includes(res.body.masked_key)).toBe(false);
      made.push(res.body);
    }
    const first = made[0];
    const got = await rest(t, "GET", `/v1/me/keys/${first.id}`, { key: owner.key });
    expect(got.body).toMatchObject({ id: first.id, masked_key: first.masked_key, name: "k0", revoked: null });
    expect(got.body).not.toHaveProperty("key");
    expect(JSON.stringify(got.body)).not.toContain(first.key);

    const renamed = await rest(t, "PATCH", `/v1/me/keys/${first.id}`, { key: owner.key, body: { name: "renamed" } });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ id: first.id, name: "renamed" });
    expect(renamed.body).not.toHaveProperty("key");
    expect((await rest(t, "GET", `/v1/me/keys/${first.id}`, { key: owner.key })).body.name).toBe("renamed");
    expect((await rest(t, "GET", "/v1/me", { key: first.key })).status).toBe(200);

    const revokedIds = [made[1].id, made[4].id];
    const before = Math.floor(Date.now() / 1000) - 1;
    for (const id of revokedIds) {
      const res = await rest(t, "DELETE", `/v1/me/keys/${id}`, { key: owner.key });
      expect(res.status).toBe(200);
      expect(res.body.revoked).toBeGreaterThanOrEqual(before);
      expect(res.body).not.toHaveProperty("key");
    }
    const again = await rest(t, "DELETE", `/v1/me/keys/${made[1].id}`, { key: owner.key });
    expect(again.body.revoked).toBe(
      (await rest(t, "GET", `/v1/me/keys/${made[1].id}`, { key: owner.key })).body.revoked,
    );

    const allIds = [owner.keyId, ...made.map((k) => k.id)];
    const list = await rest(t, "GET", "/v1/me/keys?limit=100", { key: owner.key });
    expect(list.body).toMatchObject({ object: "list", has_more: false, first_id: allIds[0], last_id: allIds.at(-1) });
    expect(list.body.data.map((k: Json) => k.id)).toEqual(allIds);
    for (const k of list.body.data) {
      expect(k).not.toHaveProperty("key");
      expect(k.masked_key).toEqual(expect.any(String));
      for (const m of made) expect(JSON.stringify(k)).not.toContain(m.key);
    }
    const revoked = await rest(t, "GET", "/v1/me/keys?state=revoked", { key: owner.key });
    expect(revoked.body.data.map((k: Json) => k.id)).toEqual(revokedIds);
    expect(revoked.body.data.every((k: Json) => typeof k.revoked === "number")).toBe(true);
    const active = await rest(t, "GET", "/v1/me/keys?state=active", { key: owner.key });
    expect(active.body.data.map((k: Json) => k.id)).toEqual(allIds.filter((id) => !revokedIds.includes(id)));
    expect(active.body.data.every((k: Json) => k.revoked === null)).toBe(true);
    expectOpenAIError(
      await rest(t, "GET", "/v1/me/keys?state=bogus", { key: owner.key }),
      400,
      "invalid_request_error",
    );

    // Paging: 8 keys in pages of 3 → 3 + 3 + 2, in order, no duplicates, has_more right.
    const walked: string[] = [];
    const hasMore: boolean[] = [];
    let after: string | null = null;
    for (let page = 0; page < 10; page++) {
      const qs: string = `limit=3${after ? `&after=${after}` : ""}`;
      const res = await rest(t, "GET", `/v1/me/keys?${qs}`, { key: owner.key });
      expect(res.status).toBe(200);
      walked.push(...res.body.data.map((k: Json) => k.id));
      hasMore.push(res.body.has_more);
      expect(res.body.last_id).toBe(res.body.data.at(-1)?.id ?? null);
      if (!res.body.has_more) break;
      after = res.body.last_id;
    }
    expect(walked).toEqual(allIds);
    expect(new Set(walked).size).toBe(walked.length);
    expect(hasMore).toEqual([true, true, false]);
    // Exactly a page's worth left: the last full page says has_more false.
    const tail = await rest(t, "GET", `/v1/me/keys?limit=2&after=${allIds[5]}`, { key: owner.key });
    expect(tail.body).toMatchObject({ has_more: false, first_id: allIds[6], last_id: allIds[7] });
    const activePage = await rest(t, "GET", "/v1/me/keys?state=active&limit=2", { key: owner.key });
    expect(activePage.body.data.map((k: Json) => k.id)).toEqual([allIds[0], allIds[1]]);
    expect(activePage.body.has_more).toBe(true);
    expectOpenAIError(await rest(t, "GET", "/v1/me/keys?limit=0", { key: owner.key }), 400, "invalid_request_error");
    expectOpenAIError(await rest(t, "GET", "/v1/me/keys?limit=101", { key: owner.key }), 400, "invalid_request_error");
  });
});
