import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type CallOptions,
  type Client,
  Code,
  ConnectError,
  createClient,
  createRouterTransport,
} from "@connectrpc/connect";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountService } from "../../gen/passerelle/accounts/v1/account_service_pb.js";
import { Permission } from "../../gen/passerelle/accounts/v1/resources_pb.js";
import { createTestDatabase, type TestDatabase } from "../../test/support/db.js";
import { testRedisUrl } from "../../test/support/env.js";
import { loadConfig } from "../config.js";
import { type Core, createCore } from "../core.js";
import { generateApiKey } from "./secrets.js";

// Fails (throws) when CI is set without a Redis; skips only on a developer machine without one.
const redisUrl = testRedisUrl();

type Accounts = Client<typeof AccountService>;

/** How long another process may take to honour a change: the pub/sub hop, far below the 30 s cache TTL. */
const PROPAGATION_BUDGET_MS = 1_000;
const bearer = (key: string): CallOptions => ({ headers: { authorization: `Bearer ${key}` } });

/** The Connect code `fn` fails with, or "OK". */
async function outcome(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
    return "OK";
  } catch (err) {
    if (!(err instanceof ConnectError)) throw err;
    return Code[err.code];
  }
}

/**
 * Polls `fn` until it fails with `code`, for at most PROPAGATION_BUDGET_MS; returns how long it took. Fails with
 * what the call answered last when the budget runs out.
 */
async function becomes(code: Code, fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  let last = "";
  for (;;) {
    last = await outcome(fn);
    const elapsed = performance.now() - start;
    if (last === Code[code]) return elapsed;
    if (elapsed > PROPAGATION_BUDGET_MS) {
      expect.fail(
        `still ${last} after ${Math.round(elapsed)} ms; expected ${Code[code]} within ${PROPAGATION_BUDGET_MS} ms`,
      );
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe.skipIf(!redisUrl)("auth cache invalidation across processes (two cores, one PostgreSQL, one Redis)", () => {
  let tdb: TestDatabase;
  let dataDir: string;
  let coreCount = 0;
  const adminKey = generateApiKey();
  const asAdmin = bearer(adminKey);
  const cores: Core[] = [];
  let a: Accounts;
  let b: Accounts;
  let coreA: Core;
  let coreB: Core;
  let memberRoleId: string;
  const latencies: Record<string, number> = {};

  async function startCore(): Promise<{ core: Core; api: Accounts }> {
    // The default cache TTL (30 s) on purpose: only the pub/sub message can make B forget a key in time.
    const config = loadConfig({
      DATABASE_URL: tdb.url,
      REDIS_URL: redisUrl,
      // Each core stands for a process: a data directory of its own (one live usage journal per directory).
      PASSERELLE_DATA_DIR: path.join(dataDir, `core-${++coreCount}`),
      PASSERELLE_BOOTSTRAP_ADMIN_KEY: adminKey,
    });
    expect(config.auth.cacheTtlMs).toBe(30_000);
    const core = await createCore(config, pino({ level: "silent" }));
    cores.push(core);
    return {
      core,
      api: createClient(AccountService, createRouterTransport(core.routes, { router: core.routerOptions })),
    };
  }

  async function newUser(roleId: string) {
    const { user } = await a.createUser(
      { email: `${generateApiKey().slice(3, 15).toLowerCase()}@rev.test`, roleId },
      asAdmin,
    );
    const id = user?.id ?? "";
    const { secret, apiKey } = await a.createApiKey({ userId: id, name: "main" }, asAdmin);
    return { id, key: secret, keyId: apiKey?.id ?? "", as: bearer(secret) };
  }

  beforeAll(async () => {
    tdb = await createTestDatabase("rev");
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-rev-"));
    const first = await startCore();
    const second = await startCore();
    coreA = first.core;
    coreB = second.core;
    a = first.api;
    b = second.api;
    const { role } = await a.createRole({ name: "member", permissions: [Permission.READ_METRICS] }, asAdmin);
    memberRoleId = role?.id ?? "";
  });

  afterAll(async () => {
    if (Object.keys(latencies).length > 0) console.log("cross-process invalidation latency (ms):", latencies);
    for (const c of cores) await c.close().catch(() => undefined);
    await tdb?.drop();
    if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
  });

  it("runs both cores on Redis", () => {
    expect(cores.map((c) => c.kv.kind)).toEqual(["redis", "redis"]);
    expect(cores.map((c) => c.db.kind)).toEqual(["postgresql", "postgresql"]);
  });

  it("control: a warm cache on B keeps serving a key changed behind the services' back", async () => {
    // Without this, the tests below could pass because B does not cache at all. A change made directly in the
    // database sends no message, so B must keep its cached answer. (Retried: a concurrent test run on the same
    // Redis may broadcast a cache-wide invalidation at the wrong moment.)
    let outcomes: string[] = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      const u = await newUser(memberRoleId);
      await b.getMe({}, u.as);
      await coreA.db.pool.query("update api_key set revoked_at = now() where id = $1", [u.keyId]);
      const onB = await outcome(() => b.getMe({}, u.as));
      outcomes.push(onB);
      if (onB === "OK") {
        outcomes = ["OK"];
        break;
      }
    }
    expect(outcomes).toEqual(["OK"]);
  });

  it("a key revoked through A is refused by B at once", async () => {
    const u = await newUser(memberRoleId);
    await a.getMe({}, u.as);
    await b.getMe({}, u.as);
    await b.getMe({}, u.as);
    await a.revokeApiKey({ id: u.keyId }, u.as);
    expect(await outcome(() => a.getMe({}, u.as))).toBe("Unauthenticated");
    latencies.revoke = Math.round(await becomes(Code.Unauthenticated, () => b.getMe({}, u.as)));
  });

  it("a permission removed from a role through A is refused by B at once", async () => {
    const { role } = await a.createRole({ name: "operators", permissions: [Permission.ADMIN] }, asAdmin);
    const u = await newUser(role?.id ?? "");
    await a.listUsers({}, u.as);
    await b.listUsers({}, u.as);
    await b.listUsers({}, u.as);
    await a.updateRole({ id: role?.id ?? "", permissions: { permissions: [Permission.READ_METRICS] } }, asAdmin);
    expect(await outcome(() => a.listUsers({}, u.as))).toBe("PermissionDenied");
    latencies.updateRole = Math.round(await becomes(Code.PermissionDenied, () => b.listUsers({}, u.as)));
    // The key itself still authenticates on B.
    await b.getMe({}, u.as);
  });

  it("a key's limits changed through A apply on B at once", async () => {
    const u = await newUser(memberRoleId);
    const key = (await coreB.authenticate(u.key)).keyLimits;
    expect(key ?? null).toBeNull();
    await coreB.authenticate(u.key); // cached on B now
    await a.updateApiKey({ id: u.keyId, limits: { requestsPerMinute: 1 } }, u.as);
    const start = performance.now();
    let seen: unknown = null;
    while (performance.now() - start < PROPAGATION_BUDGET_MS) {
      seen = (await coreB.authenticate(u.key)).keyLimits;
      if (seen) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(seen).toEqual({ requestsPerMinute: 1, requestsPerDay: null, tokensPerMinute: null, tokensPerDay: null });
    latencies.keyLimits = Math.round(performance.now() - start);
    // And back: removing them is pushed too.
    await a.updateApiKey({ id: u.keyId, limits: {} }, u.as);
    const again = performance.now();
    while (performance.now() - again < PROPAGATION_BUDGET_MS && (await coreB.authenticate(u.key)).keyLimits) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect((await coreB.authenticate(u.key)).keyLimits ?? null).toBeNull();
  });

  it("a user deleted through A is refused by B at once", async () => {
    const u = await newUser(memberRoleId);
    await b.getMe({}, u.as);
    await b.getMe({}, u.as);
    await a.deleteUser({ id: u.id }, asAdmin);
    latencies.deleteUser = Math.round(await becomes(Code.Unauthenticated, () => b.getMe({}, u.as)));
  });

  it("a user expired through A is locked out on B at once", async () => {
    const u = await newUser(memberRoleId);
    await b.listApiKeys({}, u.as);
    await b.listApiKeys({}, u.as);
    await a.updateUser({ id: u.id, expireTime: timestampFromMs(Date.now() - 60_000) }, asAdmin);
    latencies.expireUser = Math.round(await becomes(Code.PermissionDenied, () => b.listApiKeys({}, u.as)));
    expect((await b.getMe({}, u.as)).expired).toBe(true);
  });
});
