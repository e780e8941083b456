// The key cache against the database read it races with: a lookup whose read predates a revocation (or a role or
// user change) must not cache that read once the change's invalidation has run, here or in another process.
import { Code, ConnectError } from "@connectrpc/connect";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { createMemoryKv } from "../platform/kv/index.js";
import type { AccountStore, KeyPrincipalRow } from "./account-store.js";
import { type Authenticator, createAuthenticator } from "./authenticator.js";
import { hashApiKey } from "./secrets.js";

const TOKEN = "sk-authenticator-test-token";

const baseRow: KeyPrincipalRow = {
  keyId: "00000000-0000-7000-8000-000000000001",
  keyExpiresAt: null,
  keyRevokedAt: null,
  userId: "00000000-0000-7000-8000-000000000002",
  email: "a@b.test",
  name: "a",
  userExpiresAt: null,
  organizationId: null,
  roleId: "00000000-0000-7000-8000-000000000003",
  roleName: "operators",
  permissions: ["admin"],
  keyLimits: null,
};

/**
 * A store whose reads take a snapshot of `db` when they start (the database read) and answer only when released
 * (a slow connection), so a test can commit a change and invalidate between the two.
 */
function slowStore() {
  const db: { row: KeyPrincipalRow | null } = { row: { ...baseRow } };
  const held: Array<() => void> = [];
  let reads = 0;
  let holdReads = true;
  const store = {
    async findByKeyHash() {
      reads++;
      const snapshot = db.row ? { ...db.row } : null;
      if (holdReads) await new Promise<void>((r) => held.push(r));
      return snapshot;
    },
    async touchKey() {},
  } as unknown as AccountStore;
  return {
    db,
    store,
    reads: () => reads,
    /** Answers the reads held so far; later reads answer at once. */
    releaseAll() {
      holdReads = false;
      for (const r of held.splice(0)) r();
    },
  };
}

async function newAuthenticator(store: AccountStore, kv = createMemoryKv()): Promise<Authenticator> {
  return createAuthenticator({ store, kv, logger: pino({ level: "silent" }), ttlMs: 30_000, maxEntries: 100 });
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "OK";
  } catch (err) {
    if (!(err instanceof ConnectError)) throw err;
    return Code[err.code];
  }
}

/** Lets the lookup started just before reach the store. */
const tick = () => new Promise((r) => setTimeout(r, 5));

describe("authenticator cache", () => {
  it("control: caches a key, so one read serves many calls", async () => {
    const s = slowStore();
    s.releaseAll();
    const auth = await newAuthenticator(s.store);
    await auth.authenticate(TOKEN);
    await auth.authenticate(TOKEN);
    expect(s.reads()).toBe(1);
    await auth.close();
  });

  it("records a key's use after the call's turn, once a minute at most", async () => {
    const s = slowStore();
    s.releaseAll();
    const touched: string[] = [];
    s.store.touchKey = async (keyId: string) => void touched.push(keyId);
    const auth = await newAuthenticator(s.store);
    await auth.authenticate(TOKEN);
    expect(touched).toEqual([]); // not on the call's turn: its upstream call is sent first
    await new Promise((r) => setImmediate(r));
    expect(touched).toEqual([]); // nor in its check phase, where a reused upstream connection is written
    await tick();
    expect(touched).toEqual([baseRow.keyId]);
    await auth.authenticate(TOKEN);
    await tick();
    expect(touched).toEqual([baseRow.keyId]);
    await auth.close();
  });

  it("refuses a key revoked while its lookup was in flight", async () => {
    const s = slowStore();
    const auth = await newAuthenticator(s.store);
    const first = auth.authenticate(TOKEN);
    await tick();
    // RevokeApiKey: the row is updated, then the cache invalidated (key-handlers.ts).
    s.db.row = { ...baseRow, keyRevokedAt: new Date() };
    await auth.invalidateKeys([hashApiKey(TOKEN)]);
    // A caller arriving after the revocation returned must not join the stale read.
    const after = auth.authenticate(TOKEN);
    s.releaseAll();
    expect(await codeOf(first)).toBe("OK"); // that request legitimately raced the revocation
    expect(await codeOf(after)).toBe("Unauthenticated");
    expect(await codeOf(auth.authenticate(TOKEN))).toBe("Unauthenticated");
    await auth.close();
  });

  it("drops a role's old permissions read while invalidateAll ran", async () => {
    const s = slowStore();
    const auth = await newAuthenticator(s.store);
    const first = auth.authenticate(TOKEN);
    await tick();
    // UpdateRole demotes the admin, then clears every cached key.
    s.db.row = { ...baseRow, permissions: ["read_metrics"] };
    await auth.invalidateAll();
    s.releaseAll();
    expect([...(await first).permissions]).toEqual(["admin"]);
    expect([...(await auth.authenticate(TOKEN)).permissions]).toEqual(["read_metrics"]);
    await auth.close();
  });

  it("refuses a deleted user's key when another process's invalidation lands mid-lookup", async () => {
    const s = slowStore();
    const kv = createMemoryKv();
    const here = await newAuthenticator(s.store, kv);
    const elsewhere = await newAuthenticator(s.store, kv);
    const first = here.authenticate(TOKEN);
    await tick();
    // DeleteUser handled by another process: the row is gone, the invalidation arrives over pub/sub.
    s.db.row = null;
    await elsewhere.invalidateKeys([hashApiKey(TOKEN)]);
    await tick();
    s.releaseAll();
    expect(await codeOf(first)).toBe("OK");
    expect(await codeOf(here.authenticate(TOKEN))).toBe("Unauthenticated");
    await here.close();
    await elsewhere.close();
  });
});

describe("authenticator cache kept warm", () => {
  /** Real time, a short TTL: passes every 400 ms, and a silence of twice the TTL. */
  const TTL_MS = 1_200;
  const silence = () => new Promise((r) => setTimeout(r, 2 * TTL_MS + 100));

  /** A store that answers at once, and an authenticator on it that has verified TOKEN once. */
  async function verifiedOnce(keepWarmMs: number) {
    const s = slowStore();
    s.releaseAll();
    const auth = await createAuthenticator({
      store: s.store,
      kv: createMemoryKv(),
      logger: pino({ level: "silent" }),
      ttlMs: TTL_MS,
      maxEntries: 100,
      keepWarmMs,
    });
    await auth.authenticate(TOKEN);
    return { s, auth };
  }

  async function afterSilence(keepWarmMs: number) {
    const { s, auth } = await verifiedOnce(keepWarmMs);
    await silence();
    // What changed meanwhile is seen: the reloads read the database, they do not extend what was cached.
    s.db.row = { ...baseRow, roleName: "renamed" };
    await silence();
    const before = s.reads();
    const principal = await auth.authenticate(TOKEN);
    const onRequestPath = s.reads() - before;
    await auth.close();
    return { onRequestPath, reads: s.reads(), roleName: principal.roleName };
  }

  it("answers the first call after a silence longer than the TTL from the cache, with what the database holds", async () => {
    const [warm, cold] = await Promise.all([afterSilence(60_000), afterSilence(0)]);
    expect(warm).toMatchObject({ onRequestPath: 0, roleName: "renamed" });
    // Reloaded at an age between half and five sixths of the TTL: some 8 reads over 2 × 2.5 TTLs, not one per pass.
    expect(warm.reads).toBeGreaterThanOrEqual(4);
    expect(warm.reads).toBeLessThanOrEqual(10);
    // Control: without it, that call reads the database itself.
    expect(cold).toMatchObject({ onRequestPath: 1, reads: 2, roleName: "renamed" });
  });

  it("stops reloading a key left unused for longer than keepWarmMs", async () => {
    const { s, auth } = await verifiedOnce(1_000);
    await silence();
    const settled = s.reads();
    expect(settled).toBeGreaterThanOrEqual(2); // reloaded while in use
    await silence();
    expect(s.reads()).toBe(settled);
    await auth.close();
  });
});
