// Over 400 lines on purpose: the AccountService's behaviours share one core and database per file (a fresh
// PostgreSQL database and migrations cost seconds); split by concern into describe blocks instead.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { type Timestamp, timestampDate, timestampFromDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type CallOptions,
  type Client,
  Code,
  ConnectError,
  createClient,
  createRouterTransport,
} from "@connectrpc/connect";
import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { AccountService, ApiKeyState, MeView } from "../../gen/passerelle/accounts/v1/account_service_pb.js";
import { ApiKeyKind, Permission } from "../../gen/passerelle/accounts/v1/resources_pb.js";
import { ErrorInfoSchema } from "../../gen/passerelle/errors/v1/error_info_pb.js";
import { ModelService } from "../../gen/passerelle/models/v1/model_service_pb.js";
import { ModelType } from "../../gen/passerelle/models/v1/resources_pb.js";
import { createTestDatabase, type TestDatabase } from "../../test/support/db.js";
import { loadConfig } from "../config.js";
import { type Core, createCore } from "../core.js";
import { generateApiKey } from "./secrets.js";

type Accounts = Client<typeof AccountService>;

const DAY_MS = 86_400_000;
const MAX_DAYS = 30;
const SESSION_TTL_S = 120;
const MAX_FAILED_LOGINS = 3;
const ADMIN_EMAIL = "root@service.test";
const ADMIN_PASSWORD = "bootstrap password 1234";
const PASSWORD = "a long enough password";

const bearer = (key: string): CallOptions => ({ headers: { authorization: `Bearer ${key}` } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ms = (t: Timestamp | undefined) => (t ? timestampDate(t).getTime() : undefined);

async function rejection(fn: () => Promise<unknown>): Promise<ConnectError> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    return err as ConnectError;
  }
  throw new Error("expected the call to fail, it succeeded");
}

/** Asserts the call fails with `code` (and `reason` when given); returns the error. */
async function expectCode(fn: () => Promise<unknown>, code: Code, reason?: string): Promise<ConnectError> {
  const err = await rejection(fn);
  expect(Code[err.code], err.message).toBe(Code[code]);
  if (reason !== undefined) expect(err.findDetails(ErrorInfoSchema)[0]?.reason).toBe(reason);
  return err;
}

describe("AccountService on a real core", () => {
  let tdb: TestDatabase;
  let dataDir: string;
  const adminKey = generateApiKey();
  const opened: Core[] = [];
  let cores = 0;
  let core: Core;
  let api: Accounts;
  let asAdmin: CallOptions;

  /**
   * A core on the test database, as `npm start` would build it (memory KV, no REDIS_URL). Each core stands for a
   * process of its own, so it gets a data directory of its own (its usage journal belongs to one live journal).
   */
  async function startCore(env: Record<string, string> = {}, url = tdb.url): Promise<{ core: Core; api: Accounts }> {
    const config = loadConfig({
      DATABASE_URL: url,
      PASSERELLE_DATA_DIR: path.join(dataDir, `core-${++cores}`),
      PASSERELLE_BOOTSTRAP_ADMIN_EMAIL: ADMIN_EMAIL,
      PASSERELLE_BOOTSTRAP_ADMIN_PASSWORD: ADMIN_PASSWORD,
      PASSERELLE_BOOTSTRAP_ADMIN_KEY: adminKey,
      PASSERELLE_AUTH_KEY_MAX_LIFETIME_DAYS: String(MAX_DAYS),
      PASSERELLE_AUTH_SESSION_TTL_SECONDS: String(SESSION_TTL_S),
      PASSERELLE_AUTH_MAX_FAILED_LOGINS: String(MAX_FAILED_LOGINS),
      ...env,
    });
    const c = await createCore(config, pino({ level: "silent" }));
    opened.push(c);
    return { core: c, api: createClient(AccountService, createRouterTransport(c.routes, { router: c.routerOptions })) };
  }

  async function closeCore(c: Core): Promise<void> {
    opened.splice(opened.indexOf(c), 1);
    await c.close();
  }

  let seq = 0;
  /** A user (with a password) in a role, and a key of theirs created by the admin. */
  async function newUser(roleId: string, opts: { email?: string } = {}) {
    const email = opts.email ?? `user${++seq}@service.test`;
    const { user } = await api.createUser({ email, password: PASSWORD, roleId }, asAdmin);
    if (!user) throw new Error("no user");
    const { secret, apiKey } = await api.createApiKey({ userId: user.id, name: "main" }, asAdmin);
    return { user, key: secret, keyId: apiKey?.id ?? "", as: bearer(secret), email };
  }

  async function allUsers(client: Accounts, opts: CallOptions): Promise<string[]> {
    const ids: string[] = [];
    let pageToken = "";
    do {
      const res = await client.listUsers({ pageSize: 100, pageToken }, opts);
      ids.push(...res.users.map((u) => u.id));
      pageToken = res.nextPageToken;
    } while (pageToken);
    return ids;
  }

  let memberRoleId: string;

  beforeAll(async () => {
    tdb = await createTestDatabase("svc");
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-svc-"));
    ({ core, api } = await startCore());
    asAdmin = bearer(adminKey);
  });

  afterAll(async () => {
    for (const c of [...opened].reverse()) await c.close().catch(() => undefined);
    await tdb?.drop();
    if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  describe("bootstrap", () => {
    it("creates the admin role, user and key on the empty database", async () => {
      expect(core.bootstrap).toEqual({ created: true, email: ADMIN_EMAIL, generatedKey: undefined });
      const me = await api.getMe({}, asAdmin);
      expect(me.user?.email).toBe(ADMIN_EMAIL);
      expect(me.user?.hasPassword).toBe(true);
      expect(me.role?.name).toBe("admin");
      expect([...(me.role?.permissions ?? [])].sort()).toEqual(
        [Permission.ADMIN, Permission.CREATE_PUBLIC_COLLECTION, Permission.READ_METRICS].sort(),
      );
      expect(me.expired).toBe(false);
      expect(await allUsers(api, asAdmin)).toEqual([me.user?.id]);
      const roles = await api.listRoles({}, asAdmin);
      expect(roles.roles.map((r) => r.name)).toEqual(["admin"]);
      expect(roles.roles[0]?.userCount).toBe(1n);
      const keys = await api.listApiKeys({}, asAdmin);
      expect(keys.apiKeys).toHaveLength(1);
      expect(keys.apiKeys[0]).toMatchObject({ name: "bootstrap", kind: ApiKeyKind.STANDARD, id: me.apiKeyId });
      expect(keys.apiKeys[0]?.expireTime).toBeUndefined();
      expect(keys.apiKeys[0]?.maskedKey).toBe(`${adminKey.slice(0, 6)}…${adminKey.slice(-4)}`);
    });

    it("does not create another admin on a second start with the same settings", async () => {
      const before = await allUsers(api, asAdmin);
      const second = await startCore();
      expect(second.core.bootstrap).toEqual({ created: false, email: ADMIN_EMAIL, generatedKey: undefined });
      expect(await allUsers(second.api, asAdmin)).toEqual(before);
      expect((await second.api.listApiKeys({}, asAdmin)).apiKeys).toHaveLength(1);
      expect((await second.api.listRoles({ name: "admin" }, asAdmin)).roles).toHaveLength(1);
      await closeCore(second.core);
    });

    it("attaches a different PASSERELLE_BOOTSTRAP_ADMIN_KEY to the existing admin, once", async () => {
      const before = await allUsers(api, asAdmin);
      const adminId = (await api.getMe({}, asAdmin)).user?.id;
      const otherKey = generateApiKey();
      const third = await startCore({ PASSERELLE_BOOTSTRAP_ADMIN_KEY: otherKey });
      expect(third.core.bootstrap.created).toBe(false);
      expect(third.core.bootstrap.generatedKey).toBeUndefined();
      const me = await third.api.getMe({}, bearer(otherKey));
      expect(me.user?.id).toBe(adminId);
      expect(me.role?.name).toBe("admin");
      // And through the first core too: it is an ordinary stored key.
      expect((await api.getMe({}, bearer(otherKey))).user?.id).toBe(adminId);
      expect(await allUsers(api, asAdmin)).toEqual(before);
      expect((await api.listApiKeys({}, asAdmin)).apiKeys.map((k) => k.name)).toEqual(["bootstrap", "bootstrap"]);
      await closeCore(third.core);

      const fourth = await startCore({ PASSERELLE_BOOTSTRAP_ADMIN_KEY: otherKey });
      expect((await api.listApiKeys({}, asAdmin)).apiKeys).toHaveLength(2);
      await closeCore(fourth.core);
    });

    it("generates and returns an admin key once when none is configured", async () => {
      const fresh = await createTestDatabase("svcgen");
      try {
        const first = await startCore({ PASSERELLE_BOOTSTRAP_ADMIN_KEY: "" }, fresh.url);
        const generated = first.core.bootstrap.generatedKey;
        expect(first.core.bootstrap.created).toBe(true);
        expect(generated).toMatch(/^sk-[A-Za-z0-9_-]{43}$/);
        expect((await first.api.getMe({}, bearer(generated ?? ""))).user?.email).toBe(ADMIN_EMAIL);
        await closeCore(first.core);
        const again = await startCore({ PASSERELLE_BOOTSTRAP_ADMIN_KEY: "" }, fresh.url);
        expect(again.core.bootstrap).toEqual({ created: false, email: ADMIN_EMAIL, generatedKey: undefined });
        expect((await again.api.getMe({}, bearer(generated ?? ""))).user?.email).toBe(ADMIN_EMAIL);
        expect((await again.api.listUsers({}, bearer(generated ?? ""))).users).toHaveLength(1);
        await closeCore(again.core);
      } finally {
        await fresh.drop();
      }
    });

    it("several processes starting together on an empty database all start, with one admin and one key", async () => {
      for (const configured of [generateApiKey(), ""]) {
        const fresh = await createTestDatabase("svcrace");
        try {
          const starts = await Promise.allSettled(
            [1, 2, 3].map(() => startCore({ PASSERELLE_BOOTSTRAP_ADMIN_KEY: configured }, fresh.url)),
          );
          const started = starts.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
          const failures = starts.flatMap((s) => (s.status === "rejected" ? [String(s.reason)] : []));
          expect(failures).toEqual([]);
          const created = started.filter((s) => s.core.bootstrap.created);
          const generated = started.flatMap((s) =>
            s.core.bootstrap.generatedKey ? [s.core.bootstrap.generatedKey] : [],
          );
          if (configured) {
            expect(created.length).toBeLessThanOrEqual(1);
            expect(generated).toEqual([]);
          } else {
            expect(created).toHaveLength(1);
            expect(generated).toHaveLength(1);
          }
          const key = configured || (generated[0] ?? "");
          for (const s of started) expect((await s.api.getMe({}, bearer(key))).user?.email).toBe(ADMIN_EMAIL);
          const first = started[0]?.api as Accounts;
          expect((await first.listUsers({}, bearer(key))).users).toHaveLength(1);
          expect((await first.listApiKeys({}, bearer(key))).apiKeys).toHaveLength(1);
          expect((await first.listRoles({}, bearer(key))).roles.map((r) => r.name)).toEqual(["admin"]);
          for (const s of started) await closeCore(s.core);
        } finally {
          await fresh.drop();
        }
      }
    });

    it("lets the bootstrap admin log in with PASSERELLE_BOOTSTRAP_ADMIN_PASSWORD", async () => {
      const res = await api.login({ email: ADMIN_EMAIL.toUpperCase(), password: ADMIN_PASSWORD });
      expect((await api.getMe({}, bearer(res.secret))).user?.email).toBe(ADMIN_EMAIL);
    });
  });

  describe("users and roles", () => {
    beforeAll(async () => {
      const { role } = await api.createRole({ name: "member", permissions: [Permission.READ_METRICS] }, asAdmin);
      memberRoleId = role?.id ?? "";
    });

    it("keeps e-mails unique, case-insensitively", async () => {
      await api.createUser({ email: "Dup@Service.test", roleId: memberRoleId }, asAdmin);
      await expectCode(
        () => api.createUser({ email: "dup@service.TEST", roleId: memberRoleId }, asAdmin),
        Code.AlreadyExists,
        "USER_ALREADY_EXISTS",
      );
    });

    it("refuses non-admins on admin RPCs", async () => {
      const u = await newUser(memberRoleId);
      await expectCode(() => api.listUsers({}, u.as), Code.PermissionDenied);
      await expectCode(() => api.createRole({ name: "x" }, u.as), Code.PermissionDenied);
      await expectCode(() => api.createApiKey({ userId: "-", name: "x" }, u.as), Code.PermissionDenied);
    });

    it("refuses to delete a role or organization that still has users (FailedPrecondition)", async () => {
      const { role } = await api.createRole({ name: "busy" }, asAdmin);
      const { organization } = await api.createOrganization({ name: "Busy Org" }, asAdmin);
      await api.createUser(
        { email: "busy@service.test", roleId: role?.id ?? "", organizationId: organization?.id ?? "" },
        asAdmin,
      );
      await expectCode(() => api.deleteRole({ id: role?.id ?? "" }, asAdmin), Code.FailedPrecondition);
      await expectCode(() => api.deleteOrganization({ id: organization?.id ?? "" }, asAdmin), Code.FailedPrecondition);
    });

    it("a role's permission change applies on the very next call of its users", async () => {
      const { role } = await api.createRole({ name: "ops", permissions: [Permission.ADMIN] }, asAdmin);
      const u = await newUser(role?.id ?? "");
      // Warm the authenticator's cache with the admin permission.
      await api.listUsers({}, u.as);
      await api.listUsers({}, u.as);
      await api.updateRole({ id: role?.id ?? "", permissions: { permissions: [Permission.READ_METRICS] } }, asAdmin);
      await expectCode(() => api.listUsers({}, u.as), Code.PermissionDenied);
      const me = await api.getMe({}, u.as);
      expect(me.role?.permissions).toEqual([Permission.READ_METRICS]);
      // And back: granted again at once.
      await api.updateRole({ id: role?.id ?? "", permissions: { permissions: [Permission.ADMIN] } }, asAdmin);
      await api.listUsers({}, u.as);
    });

    it("moving a user to another role applies on their next call", async () => {
      const { role } = await api.createRole({ name: "ops2", permissions: [Permission.ADMIN] }, asAdmin);
      const u = await newUser(role?.id ?? "");
      await api.listUsers({}, u.as);
      await api.updateUser({ id: u.user.id, roleId: memberRoleId }, asAdmin);
      await expectCode(() => api.listUsers({}, u.as), Code.PermissionDenied);
    });

    it("an expiry set in the past locks the user out of everything but GetMe, at once", async () => {
      const u = await newUser(memberRoleId);
      await api.listApiKeys({}, u.as);
      await api.updateUser({ id: u.user.id, expireTime: timestampFromMs(Date.now() - 60_000) }, asAdmin);
      await expectCode(() => api.listApiKeys({}, u.as), Code.PermissionDenied, "ACCOUNT_EXPIRED");
      await expectCode(() => api.createApiKey({ name: "more" }, u.as), Code.PermissionDenied, "ACCOUNT_EXPIRED");
      await expectCode(() => api.updateMe({ name: "Sneaky" }, u.as), Code.PermissionDenied, "ACCOUNT_EXPIRED");
      const me = await api.getMe({}, u.as);
      expect(me.expired).toBe(true);
      expect(me.user?.id).toBe(u.user.id);
      // Lifting the expiry restores access immediately.
      await api.updateUser({ id: u.user.id, clearExpireTime: true }, asAdmin);
      await api.listApiKeys({}, u.as);
      expect((await api.getMe({}, u.as)).expired).toBe(false);
    });

    it("deleting a user stops their keys at once", async () => {
      const u = await newUser(memberRoleId);
      const session = await api.login({ email: u.email, password: PASSWORD });
      await api.getMe({}, u.as);
      await api.getMe({}, bearer(session.secret));
      await api.deleteUser({ id: u.user.id }, asAdmin);
      await expectCode(() => api.getMe({}, u.as), Code.Unauthenticated);
      await expectCode(() => api.getMe({}, bearer(session.secret)), Code.Unauthenticated);
      await expectCode(() => api.getUser({ id: u.user.id }, asAdmin), Code.NotFound);
      await expectCode(() => api.login({ email: u.email, password: PASSWORD }), Code.Unauthenticated);
    });

    it("an admin cannot delete themselves", async () => {
      const me = await api.getMe({}, asAdmin);
      await expectCode(
        () => api.deleteUser({ id: me.user?.id ?? "" }, asAdmin),
        Code.InvalidArgument,
        "CANNOT_DELETE_SELF",
      );
      expect((await api.getMe({}, asAdmin)).user?.id).toBe(me.user?.id);
    });
  });

  describe("API keys", () => {
    it("gives a key without expiry the maximum lifetime", async () => {
      const before = Date.now();
      const res = await api.createApiKey({ name: "default expiry" }, asAdmin);
      const after = Date.now();
      expect(res.secret).toMatch(/^sk-/);
      const exp = ms(res.apiKey?.expireTime) ?? 0;
      expect(exp).toBeGreaterThanOrEqual(before + MAX_DAYS * DAY_MS);
      expect(exp).toBeLessThanOrEqual(after + MAX_DAYS * DAY_MS);
      expect(ms((await api.getApiKey({ id: res.apiKey?.id ?? "" }, asAdmin)).apiKey?.expireTime)).toBe(exp);
      await api.getMe({}, bearer(res.secret));
    });

    it("accepts an expiry within the maximum lifetime as given", async () => {
      const at = new Date(Date.now() + 29 * DAY_MS);
      const res = await api.createApiKey({ name: "29 days", expireTime: timestampFromDate(at) }, asAdmin);
      expect(ms(res.apiKey?.expireTime)).toBe(at.getTime());
    });

    it("rejects an expiry beyond the maximum lifetime or in the past", async () => {
      const count = (await api.listApiKeys({ pageSize: 100 }, asAdmin)).apiKeys.length;
      for (const at of [Date.now() + 31 * DAY_MS, Date.now() - 1000]) {
        const err = await expectCode(
          () => api.createApiKey({ name: "bad", expireTime: timestampFromMs(at) }, asAdmin),
          Code.InvalidArgument,
          "INVALID_EXPIRATION",
        );
        expect(err.findDetails(ErrorInfoSchema)[0]?.param).toBe("expire_time");
      }
      expect((await api.listApiKeys({ pageSize: 100 }, asAdmin)).apiKeys).toHaveLength(count);
    });

    it("refuses an expired key (Unauthenticated), even while it is cached", async () => {
      const res = await api.createApiKey({ name: "short", expireTime: timestampFromMs(Date.now() + 1500) }, asAdmin);
      const exp = ms(res.apiKey?.expireTime) ?? 0;
      await api.getMe({}, bearer(res.secret));
      await sleep(Math.max(0, exp - Date.now()) + 100);
      await expectCode(() => api.getMe({}, bearer(res.secret)), Code.Unauthenticated, "API_KEY_EXPIRED");
      const expired = await api.listApiKeys({ state: ApiKeyState.EXPIRED }, asAdmin);
      expect(expired.apiKeys.map((k) => k.id)).toContain(res.apiKey?.id);
    });

    it("revocation applies at once and is idempotent", async () => {
      const u = await newUser(memberRoleId);
      await api.getMe({}, u.as);
      const first = await api.revokeApiKey({ id: u.keyId }, u.as);
      await expectCode(() => api.getMe({}, u.as), Code.Unauthenticated, "API_KEY_REVOKED");
      const second = await api.revokeApiKey({ id: u.keyId, userId: u.user.id }, asAdmin);
      expect(ms(second.apiKey?.revokeTime)).toBe(ms(first.apiKey?.revokeTime));
    });
  });

  describe("API key limits", () => {
    it("stores a key's own limits, keeps them on rename, replaces or removes them, and refuses an empty update", async () => {
      const u = await newUser(memberRoleId);
      const made = await api.createApiKey(
        { name: "limited", limits: { requestsPerMinute: 3, tokensPerDay: 0, requestsPerDay: 4_294_967_295 } },
        u.as,
      );
      const id = made.apiKey?.id ?? "";
      const expected = { requestsPerMinute: 3, requestsPerDay: 4_294_967_295, tokensPerDay: 0 };
      expect(made.apiKey?.limits).toMatchObject(expected);
      expect(made.apiKey?.limits?.tokensPerMinute).toBeUndefined();
      expect((await api.getApiKey({ id }, u.as)).apiKey?.limits).toMatchObject(expected);
      const listed = (await api.listApiKeys({}, u.as)).apiKeys.find((k) => k.id === id);
      expect(listed?.limits).toMatchObject(expected);
      expect((await api.getApiKey({ id: u.keyId }, u.as)).apiKey?.limits).toBeUndefined();

      const renamed = await api.updateApiKey({ id, name: "renamed" }, u.as);
      expect(renamed.apiKey).toMatchObject({ name: "renamed", limits: expected });
      const replaced = await api.updateApiKey({ id, limits: { requestsPerDay: 5 } }, u.as);
      expect(replaced.apiKey?.name).toBe("renamed");
      expect(replaced.apiKey?.limits).toMatchObject({ requestsPerDay: 5 });
      expect(replaced.apiKey?.limits?.requestsPerMinute).toBeUndefined();
      const cleared = await api.updateApiKey({ id, userId: u.user.id, limits: {} }, asAdmin);
      expect(cleared.apiKey?.limits).toBeUndefined();
      await expectCode(() => api.updateApiKey({ id }, u.as), Code.InvalidArgument);
      // Someone else's key stays out of reach, limits included.
      const other = await newUser(memberRoleId);
      await expectCode(() => api.updateApiKey({ id, limits: { requestsPerMinute: 1000 } }, other.as), Code.NotFound);
    });

    it("GetMe shows the role's and the key's limits on every model the caller may use, changes included at once", async () => {
      const models = createClient(ModelService, createRouterTransport(core.routes, { router: core.routerOptions }));
      const { role } = await api.createRole({ name: "limited-role" }, asAdmin);
      const roleId = role?.id ?? "";
      const granted = await models.createModel({ name: "limits-m1", type: ModelType.TEXT_GENERATION }, asAdmin);
      const free = await models.createModel({ name: "limits-m2", type: ModelType.TEXT_GENERATION }, asAdmin);
      const hidden = await models.createModel({ name: "limits-m3", type: ModelType.TEXT_GENERATION }, asAdmin);
      const modelId = (m: typeof granted) => m.model?.id ?? "";
      await models.grantModel({ roleId, modelId: modelId(granted), limits: { requestsPerMinute: 10 } }, asAdmin);
      await models.grantModel({ roleId, modelId: modelId(free) }, asAdmin);
      await models.grantModel({ roleId, modelId: modelId(hidden), limits: { tokensPerDay: 0 } }, asAdmin);
      const u = await newUser(roleId);

      // The user's main key: the role's limits only; a model without limits is listed, unlimited; a forbidden one
      // is not listed.
      const plain = await api.getMe({}, u.as);
      expect(plain.limits.map((l) => l.model)).toEqual(["limits-m1", "limits-m2"]);
      expect(plain.limits[0]?.requestsPerMinute).toMatchObject({
        limit: 10,
        remaining: 10,
        resetSeconds: 0,
        roleLimit: 10,
      });
      expect(plain.limits[0]?.requestsPerMinute?.keyLimit).toBeUndefined();
      expect(plain.limits[0]?.requestsPerDay).toBeUndefined();
      expect(plain.limits[1]).toMatchObject({ model: "limits-m2" });
      expect(plain.limits[1]?.requestsPerMinute).toBeUndefined();
      expect((await api.getMe({ view: MeView.BASIC }, u.as)).limits).toEqual([]);

      // A key of their own with a tighter limit and a forbidding one: both shown on every model.
      const made = await api.createApiKey({ name: "script", limits: { requestsPerMinute: 3, tokensPerDay: 0 } }, u.as);
      const asScript = bearer(made.secret);
      const viaKey = await api.getMe({}, asScript);
      expect(viaKey.limits[0]?.requestsPerMinute).toMatchObject({ limit: 3, remaining: 3, roleLimit: 10, keyLimit: 3 });
      expect(viaKey.limits[0]?.tokensPerDay).toMatchObject({ limit: 0, remaining: 0, keyLimit: 0 });
      expect(viaKey.limits[1]?.requestsPerMinute).toMatchObject({ limit: 3, remaining: 3, keyLimit: 3 });
      expect(viaKey.limits[1]?.requestsPerMinute?.roleLimit).toBeUndefined();

      // A change applies at once, though the key's principal is cached.
      await api.updateApiKey({ id: made.apiKey?.id ?? "", limits: { requestsPerDay: 2 } }, u.as);
      const changed = await api.getMe({}, asScript);
      expect(changed.limits[0]?.requestsPerMinute).toMatchObject({ limit: 10, roleLimit: 10 });
      expect(changed.limits[0]?.requestsPerMinute?.keyLimit).toBeUndefined();
      expect(changed.limits[0]?.requestsPerDay).toMatchObject({ limit: 2, remaining: 2, keyLimit: 2 });
      expect(changed.limits[0]?.tokensPerDay).toBeUndefined();

      // The admin may use every model, without role limits.
      const admin = await api.getMe({}, asAdmin);
      expect(admin.limits.map((l) => l.model)).toEqual(expect.arrayContaining(["limits-m1", "limits-m2", "limits-m3"]));
      expect(admin.limits.every((l) => !l.requestsPerMinute && !l.tokensPerDay)).toBe(true);
    });
  });

  describe("login and profile", () => {
    it("exchanges the right password for a session key that works and expires after the session TTL", async () => {
      const u = await newUser(memberRoleId);
      const before = Date.now();
      const res = await api.login({ email: u.email, password: PASSWORD });
      const after = Date.now();
      expect(res.secret).toMatch(/^sk-/);
      expect(res.apiKey?.kind).toBe(ApiKeyKind.SESSION);
      expect(res.apiKey?.userId).toBe(u.user.id);
      const exp = ms(res.apiKey?.expireTime) ?? 0;
      expect(exp).toBeGreaterThanOrEqual(before + SESSION_TTL_S * 1000);
      expect(exp).toBeLessThanOrEqual(after + SESSION_TTL_S * 1000);
      const me = await api.getMe({}, bearer(res.secret));
      expect(me.user?.id).toBe(u.user.id);
      expect(me.apiKeyId).toBe(res.apiKey?.id);
    });

    it("a session key stops working once the session TTL has passed, even while cached", async () => {
      const u = await newUser(memberRoleId);
      // A second core whose wall clock we control: only Date is faked (timers and the cache's own clock run on),
      // before the core is built, since the authenticator keeps a reference to Date.now.
      vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
      const clocked = await startCore();
      try {
        const res = await clocked.api.login({ email: u.email, password: PASSWORD });
        const exp = ms(res.apiKey?.expireTime) ?? 0;
        expect(exp).toBe(Date.now() + SESSION_TTL_S * 1000);
        const session = bearer(res.secret);
        await clocked.api.getMe({}, session);
        vi.setSystemTime(exp - 5_000);
        await clocked.api.getMe({}, session);
        vi.setSystemTime(exp + 1_000);
        await expectCode(() => clocked.api.getMe({}, session), Code.Unauthenticated, "API_KEY_EXPIRED");
        // The user's ordinary key is unaffected.
        await clocked.api.getMe({}, u.as);
      } finally {
        vi.useRealTimers();
        await closeCore(clocked.core);
      }
    });

    it("refuses a wrong password or an unknown e-mail with Unauthenticated, without creating a key", async () => {
      const u = await newUser(memberRoleId);
      const keys = (await api.listApiKeys({ userId: u.user.id }, asAdmin)).apiKeys.length;
      await expectCode(
        () => api.login({ email: u.email, password: "not the password at all" }),
        Code.Unauthenticated,
        "INVALID_CREDENTIALS",
      );
      await expectCode(
        () => api.login({ email: "nobody@service.test", password: PASSWORD }),
        Code.Unauthenticated,
        "INVALID_CREDENTIALS",
      );
      expect((await api.listApiKeys({ userId: u.user.id }, asAdmin)).apiKeys).toHaveLength(keys);
    });

    it("locks an account after too many failed logins, even for the right password", async () => {
      const u = await newUser(memberRoleId);
      for (let i = 0; i < MAX_FAILED_LOGINS; i++) {
        await expectCode(() => api.login({ email: u.email, password: `wrong password ${i}` }), Code.Unauthenticated);
      }
      const err = await expectCode(
        () => api.login({ email: u.email, password: PASSWORD }),
        Code.ResourceExhausted,
        "TOO_MANY_FAILED_LOGINS",
      );
      const info = err.findDetails(ErrorInfoSchema)[0];
      expect(info?.retryAfterSeconds).toBeGreaterThan(0);
      expect(info?.retryAfterSeconds).toBeLessThanOrEqual(15 * 60);
      // The e-mail is matched case-insensitively: no way around the lock.
      await expectCode(() => api.login({ email: u.email.toUpperCase(), password: PASSWORD }), Code.ResourceExhausted);
      // Keys keep working; other accounts can still log in.
      await api.getMe({}, u.as);
      const other = await newUser(memberRoleId);
      await api.login({ email: other.email, password: PASSWORD });
    });

    it("UpdateMe changes the caller's name", async () => {
      const u = await newUser(memberRoleId);
      const res = await api.updateMe({ name: "  Renamed Person  " }, u.as);
      expect(res.user?.name).toBe("Renamed Person");
      expect((await api.getMe({}, u.as)).user?.name).toBe("Renamed Person");
      expect((await api.getUser({ id: u.user.id }, asAdmin)).user?.name).toBe("Renamed Person");
      await expectCode(() => api.updateMe({ name: "   " }, u.as), Code.InvalidArgument);
    });

    it("UpdateMe changes the password only with the right current password", async () => {
      const u = await newUser(memberRoleId);
      const next = "a brand new password";
      await expectCode(
        () => api.updateMe({ password: next, currentPassword: "not my password" }, u.as),
        Code.InvalidArgument,
        "INVALID_CURRENT_PASSWORD",
      );
      await expectCode(() => api.updateMe({ password: next }, u.as), Code.InvalidArgument, "INVALID_CURRENT_PASSWORD");
      await expectCode(
        () => api.updateMe({ password: "short", currentPassword: PASSWORD }, u.as),
        Code.InvalidArgument,
      );
      // Nothing changed so far.
      await api.login({ email: u.email, password: PASSWORD });

      await api.updateMe({ password: next, currentPassword: PASSWORD }, u.as);
      await expectCode(() => api.login({ email: u.email, password: PASSWORD }), Code.Unauthenticated);
      const res = await api.login({ email: u.email, password: next });
      expect((await api.getMe({}, bearer(res.secret))).user?.id).toBe(u.user.id);
    });
  });
});
