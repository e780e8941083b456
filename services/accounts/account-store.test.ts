// Over 400 lines on purpose: every store method against one real PostgreSQL database per file (creating one costs
// seconds); split by entity into describe blocks.
import { createHash } from "node:crypto";
import os from "node:os";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/passerelle/errors/v1/error_info_pb.js";
import { createTestDatabase, type TestDatabase } from "../../test/support/db.js";
import { type Database, openDatabase } from "../platform/db/database.js";
import { type AccountStore, createAccountStore, keyLimitsOfKey } from "./account-store.js";
import { accountEntities, type Role } from "./entities.js";
import { generateApiKey, hashApiKey, maskApiKey } from "./secrets.js";

/** The ConnectError `fn` rejects with; fails the test when it resolves or throws something else. */
async function rejection(fn: () => Promise<unknown>): Promise<ConnectError> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    return err as ConnectError;
  }
  throw new Error("expected a rejection, got a result");
}

async function expectCode(fn: () => Promise<unknown>, code: Code, reason?: string): Promise<ConnectError> {
  const err = await rejection(fn);
  expect(Code[err.code]).toBe(Code[code]);
  if (reason !== undefined) expect(err.findDetails(ErrorInfoSchema)[0]?.reason).toBe(reason);
  return err;
}

const MISSING_ID = "01890000-0000-7000-8000-000000000000";
const HOUR = 3_600_000;

describe("account store on PostgreSQL", () => {
  let tdb: TestDatabase;
  let db: Database;
  let store: AccountStore;
  let role: Role;
  let seq = 0;

  /** A user with a unique e-mail (optionally containing `tag`) in `role`. */
  const newUser = (over: { email?: string; roleId?: string; organizationId?: string | null } = {}) =>
    store.createUser({
      email: over.email ?? `user${++seq}@store.test`,
      name: `User ${seq}`,
      passwordHash: null,
      roleId: over.roleId ?? role.id,
      organizationId: over.organizationId ?? null,
      expiresAt: null,
    });

  /** A key stored the way the service stores one; returns the stored entity and the secret. */
  const newKey = async (userId: string, over: { expiresAt?: Date | null; kind?: "standard" | "session" } = {}) => {
    const secret = generateApiKey();
    const key = await store.createKey({
      userId,
      name: "k",
      keyHash: hashApiKey(secret),
      masked: maskApiKey(secret),
      kind: over.kind ?? "standard",
      expiresAt: over.expiresAt ?? null,
    });
    return { key, secret };
  };

  const sql = async <T = Record<string, unknown>>(query: string, params: unknown[] = []) =>
    (await db.orm()).em.fork().getConnection().execute<T[]>(query, params);

  beforeAll(async () => {
    tdb = await createTestDatabase("store");
    try {
      db = await openDatabase({ url: tdb.url, dataDir: os.tmpdir(), entities: [...accountEntities] });
    } catch (err) {
      await tdb.drop();
      throw err;
    }
    store = createAccountStore(db);
    role = await store.createRole("member", ["read_metrics"]);
  });

  afterAll(async () => {
    await db?.close();
    await tdb?.drop();
  });

  it("opens on the real server, not the embedded one", () => {
    expect(db.kind).toBe("postgresql");
  });

  describe("uniqueness", () => {
    it("rejects a second user with the same e-mail as AlreadyExists naming the field", async () => {
      await newUser({ email: "dup@store.test" });
      const err = await expectCode(
        () => newUser({ email: "dup@store.test" }),
        Code.AlreadyExists,
        "USER_ALREADY_EXISTS",
      );
      expect(err.findDetails(ErrorInfoSchema)[0]?.param).toBe("email");
    });

    it("rejects renaming a user onto another user's e-mail", async () => {
      await newUser({ email: "taken@store.test" });
      const other = await newUser();
      await expectCode(() => store.updateUser(other.id, { email: "taken@store.test" }), Code.AlreadyExists);
      expect((await store.getUser(other.id))?.email).toBe(other.email);
    });

    it("rejects duplicate role names on create and on rename", async () => {
      await store.createRole("dup-role", []);
      const err = await expectCode(
        () => store.createRole("dup-role", ["admin"]),
        Code.AlreadyExists,
        "ROLE_ALREADY_EXISTS",
      );
      expect(err.findDetails(ErrorInfoSchema)[0]?.param).toBe("name");
      const other = await store.createRole("other-role", []);
      await expectCode(() => store.updateRole(other.id, { name: "dup-role" }), Code.AlreadyExists);
      expect((await store.getRole(other.id))?.name).toBe("other-role");
    });

    it("rejects duplicate organization names on create and on rename", async () => {
      await store.createOrganization("Dup Org");
      await expectCode(() => store.createOrganization("Dup Org"), Code.AlreadyExists, "ORGANIZATION_ALREADY_EXISTS");
      const other = await store.createOrganization("Other Org");
      await expectCode(() => store.updateOrganization(other.id, { name: "Dup Org" }), Code.AlreadyExists);
    });
  });

  describe("referential integrity", () => {
    it("refuses to delete a role that users still hold (FailedPrecondition), then deletes it once free", async () => {
      const r = await store.createRole("held-role", []);
      const u = await newUser({ roleId: r.id });
      await expectCode(() => store.deleteRole(r.id), Code.FailedPrecondition, "ROLE_IN_USE");
      expect(await store.getRole(r.id)).not.toBeNull();
      expect((await store.countUsersByRole([r.id])).get(r.id)).toBe(1);
      await store.updateUser(u.id, { roleId: role.id });
      expect(await store.deleteRole(r.id)).toBe(true);
      expect(await store.getRole(r.id)).toBeNull();
      expect(await store.deleteRole(r.id)).toBe(false);
    });

    it("refuses to delete an organization that still has users (FailedPrecondition)", async () => {
      const org = await store.createOrganization("Held Org");
      const u = await newUser({ organizationId: org.id });
      await expectCode(() => store.deleteOrganization(org.id), Code.FailedPrecondition, "ORGANIZATION_IN_USE");
      expect((await store.countUsersByOrganization([org.id])).get(org.id)).toBe(1);
      await store.updateUser(u.id, { organizationId: null });
      expect(await store.deleteOrganization(org.id)).toBe(true);
    });

    it("rejects references to a missing role, organization or user as InvalidArgument, writing nothing", async () => {
      const before = await store.countUsers();
      await expectCode(() => newUser({ roleId: MISSING_ID }), Code.InvalidArgument, "REFERENCE_NOT_FOUND");
      await expectCode(() => newUser({ organizationId: MISSING_ID }), Code.InvalidArgument, "REFERENCE_NOT_FOUND");
      expect(await store.countUsers()).toBe(before);
      const u = await newUser();
      await expectCode(() => store.updateUser(u.id, { roleId: MISSING_ID }), Code.InvalidArgument);
      expect((await store.getUser(u.id))?.role.id).toBe(role.id);
      await expectCode(() => newKey(MISSING_ID), Code.InvalidArgument, "REFERENCE_NOT_FOUND");
    });

    it("deleting a user deletes their keys", async () => {
      const u = await newUser();
      const { key, secret } = await newKey(u.id);
      expect(await store.keyHashesOfUser(u.id)).toEqual([hashApiKey(secret)]);
      expect(await store.deleteUser(u.id)).toBe(true);
      expect(await store.getKey(key.id, undefined)).toBeNull();
      expect(await store.findByKeyHash(hashApiKey(secret))).toBeNull();
      expect(await store.deleteUser(u.id)).toBe(false);
    });
  });

  describe("keyset paging and filters", () => {
    let pagingRole: Role;
    let otherRole: Role;
    let orgId: string;
    const ids: string[] = [];

    beforeAll(async () => {
      pagingRole = await store.createRole("paging-role", []);
      otherRole = await store.createRole("paging-other", []);
      orgId = (await store.createOrganization("Paging Org")).id;
      for (let i = 0; i < 23; i++) {
        const u = await newUser({
          // every third user has a MiXeD-case marker in the e-mail
          email: i % 3 === 0 ? `pg${i}.MaRkEr@paging.test` : `pg${i}@paging.test`,
          roleId: i % 2 === 0 ? pagingRole.id : otherRole.id,
          organizationId: i % 4 === 0 ? orgId : null,
        });
        ids.push(u.id);
      }
    });

    async function all(filter: Parameters<AccountStore["listUsers"]>[1], limit: number): Promise<string[][]> {
      const pages: string[][] = [];
      let after: string | undefined;
      for (let i = 0; i < 100; i++) {
        const rows = await store.listUsers({ after, limit }, filter);
        if (rows.length === 0) break;
        pages.push(rows.map((r) => r.id));
        after = rows[rows.length - 1]?.id;
        if (rows.length < limit) break;
      }
      return pages;
    }

    it("lists in id (creation) order across pages, without duplicates or gaps", async () => {
      const pages = await all({ email: "@paging.test" }, 5);
      expect(pages.map((p) => p.length)).toEqual([5, 5, 5, 5, 3]);
      const flat = pages.flat();
      expect(new Set(flat).size).toBe(flat.length);
      expect(flat).toEqual(ids);
      expect([...flat].sort()).toEqual(flat);
    });

    it("filters by e-mail substring, case-insensitively", async () => {
      const want = ids.filter((_, i) => i % 3 === 0);
      expect((await all({ email: "marker" }, 3)).flat()).toEqual(want);
      expect((await all({ email: "MARKER@PAGING" }, 100)).flat()).toEqual(want);
    });

    it("treats LIKE wildcards in the e-mail filter literally", async () => {
      expect(await store.listUsers({ limit: 100 }, { email: "%" })).toEqual([]);
      expect(await store.listUsers({ limit: 100 }, { email: "pg_@paging" })).toEqual([]);
      expect(await store.listUsers({ limit: 100 }, { email: "\\" })).toEqual([]);
    });

    it("filters by role and by organization, alone and combined", async () => {
      expect((await all({ roleId: pagingRole.id }, 4)).flat()).toEqual(ids.filter((_, i) => i % 2 === 0));
      expect((await all({ organizationId: orgId }, 2)).flat()).toEqual(ids.filter((_, i) => i % 4 === 0));
      expect((await all({ roleId: otherRole.id, organizationId: orgId }, 2)).flat()).toEqual([]);
      expect((await all({ roleId: pagingRole.id, email: "MARKER" }, 2)).flat()).toEqual(
        ids.filter((_, i) => i % 2 === 0 && i % 3 === 0),
      );
      expect(await store.listUsers({ limit: 10 }, { roleId: MISSING_ID })).toEqual([]);
    });

    it("pages roles and organizations by id with a case-insensitive name filter", async () => {
      const names = ["Alpha-PG", "beta-pg", "gamma-Pg", "delta-xx"];
      const created: string[] = [];
      for (const n of names) created.push((await store.createRole(n, [])).id);
      const first = await store.listRoles({ limit: 2 }, { name: "-pG" });
      expect(first.map((r) => r.id)).toEqual(created.slice(0, 2));
      const second = await store.listRoles({ limit: 2, after: first[1]?.id }, { name: "-pG" });
      expect(second.map((r) => r.id)).toEqual(created.slice(2, 3));

      const orgs: string[] = [];
      for (const n of ["Ville de Lyon", "Ville de Lille", "Région"]) orgs.push((await store.createOrganization(n)).id);
      const page1 = await store.listOrganizations({ limit: 1 }, { name: "VILLE" });
      const page2 = await store.listOrganizations({ limit: 1, after: page1[0]?.id }, { name: "VILLE" });
      const page3 = await store.listOrganizations({ limit: 1, after: page2[0]?.id }, { name: "VILLE" });
      expect([...page1, ...page2, ...page3].map((o) => o.id)).toEqual(orgs.slice(0, 2));
    });
  });

  describe("API keys", () => {
    it("filters keys by state: active, expired, revoked", async () => {
      const u = await newUser();
      const active = (await newKey(u.id)).key;
      const activeUntil = (await newKey(u.id, { expiresAt: new Date(Date.now() + HOUR) })).key;
      const expired = (await newKey(u.id, { expiresAt: new Date(Date.now() - HOUR) })).key;
      const revoked = (await newKey(u.id)).key;
      const revokedAndExpired = (await newKey(u.id, { expiresAt: new Date(Date.now() - HOUR) })).key;
      await store.revokeKey(revoked.id, u.id);
      await store.revokeKey(revokedAndExpired.id, u.id);
      const list = async (state: "active" | "expired" | "revoked" | undefined) =>
        (await store.listKeys({ limit: 100 }, { ownerId: u.id, state })).map((k) => k.id);

      expect(await list("active")).toEqual([active.id, activeUntil.id]);
      expect(await list("expired")).toEqual([expired.id]);
      expect(await list("revoked")).toEqual([revoked.id, revokedAndExpired.id]);
      expect(await list(undefined)).toEqual([active.id, activeUntil.id, expired.id, revoked.id, revokedAndExpired.id]);
    });

    it("pages keys by id and scopes them to their owner", async () => {
      const a = await newUser();
      const b = await newUser();
      const mine: string[] = [];
      for (let i = 0; i < 5; i++) mine.push((await newKey(a.id)).key.id);
      const theirs = (await newKey(b.id)).key;
      const p1 = await store.listKeys({ limit: 3 }, { ownerId: a.id });
      const p2 = await store.listKeys({ limit: 3, after: p1[2]?.id }, { ownerId: a.id });
      expect([...p1, ...p2].map((k) => k.id)).toEqual(mine);
      expect(await store.getKey(theirs.id, a.id)).toBeNull();
      expect((await store.getKey(theirs.id, b.id))?.id).toBe(theirs.id);
      expect((await store.getKey(theirs.id, undefined))?.id).toBe(theirs.id);
      expect(await store.updateKey(theirs.id, a.id, { name: "stolen" })).toBeNull();
      expect(await store.revokeKey(theirs.id, a.id)).toBeNull();
      const fresh = await store.getKey(theirs.id, undefined);
      expect(fresh?.name).toBe("k");
      expect(fresh?.revokedAt).toBeNull();
      expect((await store.updateKey(theirs.id, b.id, { name: "renamed" }))?.name).toBe("renamed");
    });

    it("stores a key's own limits, up to uint32, and hands them to the auth path", async () => {
      const u = await newUser();
      const secret = generateApiKey();
      const limits = { requestsPerMinute: 0, requestsPerDay: 4_294_967_295, tokensPerMinute: null, tokensPerDay: 7 };
      const key = await store.createKey({
        userId: u.id,
        name: "limited",
        keyHash: hashApiKey(secret),
        masked: maskApiKey(secret),
        kind: "standard",
        expiresAt: null,
        limits,
      });
      expect(keyLimitsOfKey(key)).toEqual(limits);
      expect(keyLimitsOfKey((await store.getKey(key.id, u.id)) ?? key)).toEqual(limits);
      expect((await store.findByKeyHash(hashApiKey(secret)))?.keyLimits).toEqual(limits);
      // A rename leaves them alone; a limits patch replaces all four; null removes them.
      await store.updateKey(key.id, u.id, { name: "renamed" });
      expect((await store.findByKeyHash(hashApiKey(secret)))?.keyLimits).toEqual(limits);
      const tighter = { requestsPerMinute: 5, requestsPerDay: null, tokensPerMinute: null, tokensPerDay: null };
      expect(keyLimitsOfKey((await store.updateKey(key.id, u.id, { limits: tighter })) ?? key)).toEqual(tighter);
      expect((await store.findByKeyHash(hashApiKey(secret)))?.keyLimits).toEqual(tighter);
      const cleared = await store.updateKey(key.id, undefined, { limits: null });
      expect(cleared && keyLimitsOfKey(cleared)).toBeNull();
      expect((await store.findByKeyHash(hashApiKey(secret)))?.keyLimits).toBeNull();
      // The database refuses what the API cannot send.
      for (const bad of [-1, 4_294_967_296]) {
        await expect(sql("update api_key set tokens_per_day = ? where id = ?", [bad, key.id])).rejects.toThrow(
          /api_key_limits_in_range/,
        );
      }
    });

    it("findByKeyHash joins the key's user, role and organization in one row", async () => {
      const r = await store.createRole("principal-role", ["admin", "read_metrics"]);
      const org = await store.createOrganization("Principal Org");
      const expiresAt = new Date(Date.now() + 2 * HOUR);
      const u = await store.createUser({
        email: "principal@store.test",
        name: "Principal",
        passwordHash: null,
        roleId: r.id,
        organizationId: org.id,
        expiresAt,
      });
      const keyExpiry = new Date(Date.now() + HOUR);
      const { key, secret } = await newKey(u.id, { expiresAt: keyExpiry });
      const row = await store.findByKeyHash(hashApiKey(secret));
      expect(row).toEqual({
        keyId: key.id,
        keyExpiresAt: keyExpiry,
        keyRevokedAt: null,
        userId: u.id,
        email: "principal@store.test",
        name: "Principal",
        userExpiresAt: expiresAt,
        organizationId: org.id,
        roleId: r.id,
        roleName: "principal-role",
        permissions: ["admin", "read_metrics"],
        keyLimits: null,
      });
      expect(row?.keyExpiresAt).toBeInstanceOf(Date);
      expect(await store.findByKeyHash(hashApiKey(generateApiKey()))).toBeNull();
      // The raw secret is not a hash: looking it up finds nothing.
      expect(await store.findByKeyHash(secret)).toBeNull();

      // A role change shows up on the next lookup (the store caches nothing).
      await store.updateRole(r.id, { permissions: [] });
      expect((await store.findByKeyHash(hashApiKey(secret)))?.permissions).toEqual([]);
    });

    it("revoking is idempotent and keeps the first revocation time", async () => {
      const u = await newUser();
      const { key, secret } = await newKey(u.id);
      const first = await store.revokeKey(key.id, u.id);
      expect(first?.revokedAt).toBeInstanceOf(Date);
      expect(first?.keyHash).toBe(hashApiKey(secret));
      await new Promise((r) => setTimeout(r, 20));
      const second = await store.revokeKey(key.id, undefined);
      expect(second?.revokedAt?.getTime()).toBe(first?.revokedAt?.getTime());
      const row = await store.findByKeyHash(hashApiKey(secret));
      expect(row?.keyRevokedAt?.getTime()).toBe(first?.revokedAt?.getTime());
      expect(await store.revokeKey(MISSING_ID, undefined)).toBeNull();
    });

    it("touchKey records use at most once a minute", async () => {
      const u = await newUser();
      const { key } = await newKey(u.id);
      // Epoch milliseconds with the column's microseconds (raw queries return timestamptz as text).
      const lastUsed = async (): Promise<number | null> => {
        const rows = await sql<{ ms: string | number | null }>(
          "select extract(epoch from last_used_at) * 1000 as ms from api_key where id = ?",
          [key.id],
        );
        const ms = rows[0]?.ms;
        return ms == null ? null : Number(ms);
      };

      expect(await lastUsed()).toBeNull();
      await store.touchKey(key.id);
      const t1 = await lastUsed();
      expect(t1).toBeTypeOf("number");
      expect(Math.abs((t1 ?? 0) - Date.now())).toBeLessThan(60_000);
      await new Promise((r) => setTimeout(r, 20));
      await store.touchKey(key.id);
      expect(await lastUsed()).toBe(t1);

      // 30 s ago: still within the minute, unchanged.
      await sql("update api_key set last_used_at = now() - interval '30 seconds' where id = ?", [key.id]);
      const t30 = await lastUsed();
      await store.touchKey(key.id);
      expect(await lastUsed()).toBe(t30);

      // Over a minute ago: updated to now.
      await sql("update api_key set last_used_at = now() - interval '61 seconds' where id = ?", [key.id]);
      const t61 = await lastUsed();
      await store.touchKey(key.id);
      const t2 = await lastUsed();
      expect(t2).toBeGreaterThan((t61 ?? 0) + 60_000);
      const entity = await store.getKey(key.id, undefined);
      expect(entity?.lastUsedAt).toBeInstanceOf(Date);
      expect(entity?.lastUsedAt?.getTime()).toBe(Math.floor(t2 ?? 0));
    });

    it("never stores the plaintext secret: only its SHA-256 and a mask", async () => {
      const u = await newUser();
      const secrets: string[] = [];
      for (const kind of ["standard", "session"] as const) {
        const { secret } = await newKey(u.id, { kind });
        secrets.push(secret);
        const rows = await sql("select * from api_key where user_id = ? and kind = ?", [u.id, kind]);
        expect(rows).toHaveLength(1);
        const row = rows[0] as Record<string, unknown>;
        expect(secret).toMatch(/^sk-[A-Za-z0-9_-]{43}$/);
        // The random part without what the mask shows (prefix + last four).
        const hidden = secret.slice(6, -4);
        for (const [column, value] of Object.entries(row)) {
          const text = value instanceof Date ? value.toISOString() : JSON.stringify(value);
          expect(text, `column ${column}`).not.toContain(secret);
          expect(text, `column ${column}`).not.toContain(hidden);
          expect(text, `column ${column}`).not.toContain(secret.slice(3));
        }
        expect(row.key_hash).toBe(createHash("sha256").update(secret).digest("hex"));
        expect(row.key_hash).toMatch(/^[0-9a-f]{64}$/);
        expect(row.masked).toBe(`${secret.slice(0, 6)}…${secret.slice(-4)}`);
      }
      // The same holds for the whole table, every key of every test.
      const dump = JSON.stringify(await sql("select * from api_key"));
      for (const secret of secrets) expect(dump).not.toContain(secret.slice(6, -4));
    });
  });
});
