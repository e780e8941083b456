// The model cache against the database read it races with: a load whose read predates a change (a grant removed in
// another process) must neither be cached nor be joined by callers arriving after that change's invalidation.
import { Code, ConnectError } from "@connectrpc/connect";
import pino from "pino";
import { describe, expect, it } from "vitest";
import type { Principal } from "../platform/context.js";
import { createMemoryKv } from "../platform/kv/index.js";
import type { ModelStore } from "./model-store.js";
import type { ModelDetail } from "./model-types.js";
import { createModelRegistry } from "./registry.js";

const ROLE = "00000000-0000-7000-8000-0000000000r1";

const member = {
  userId: "00000000-0000-7000-8000-0000000000u1",
  roleId: ROLE,
  permissions: new Set<string>(),
} as unknown as Principal;

function detail(grantedRoleIds: string[]): ModelDetail {
  const now = new Date(0);
  return {
    id: "00000000-0000-7000-8000-0000000000m1",
    name: "chat",
    aliases: [],
    type: "text-generation",
    maxContextLength: 4096,
    vectorSize: null,
    costPromptPerMillion: 0,
    costCompletionPerMillion: 0,
    createdAt: now,
    updatedAt: now,
    providers: [],
    grantedRoleIds,
    grantLimits: new Map(
      grantedRoleIds.map((r) => [
        r,
        { requestsPerMinute: null, requestsPerDay: null, tokensPerMinute: null, tokensPerDay: null },
      ]),
    ),
  };
}

/** A store whose reads snapshot `db` when they start and answer only when released (a slow connection). */
function slowStore() {
  const db = { granted: [ROLE] };
  const held: Array<() => void> = [];
  let reads = 0;
  const store = {
    async findByName() {
      reads++;
      const snapshot = detail([...db.granted]);
      await new Promise<void>((r) => held.push(r));
      return snapshot;
    },
  } as unknown as ModelStore;
  const release = () => {
    for (const r of held.splice(0)) r();
  };
  return { db, store, reads: () => reads, release };
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

const tick = () => new Promise((r) => setTimeout(r, 5));

describe("model registry cache", () => {
  it("a grant removed in another process during a load: later callers read again, and the old read is not cached", async () => {
    const kv = createMemoryKv();
    const s = slowStore();
    const logger = pino({ level: "silent" });
    const here = await createModelRegistry({ store: s.store, kv, logger });
    const elsewhere = await createModelRegistry({ store: s.store, kv, logger });
    const before = codeOf(here.resolve("chat", member)); // its read sees the grant
    await tick();
    s.db.granted = []; // committed in another process, which then broadcasts
    await elsewhere.invalidateAll();
    const after = codeOf(here.resolve("chat", member)); // must not join the read from before the change
    await tick();
    expect(s.reads()).toBe(2);
    s.release();
    expect(await before).toBe("OK"); // it started before the change
    expect(await after).toBe("NotFound");
    const later = codeOf(here.resolve("chat", member));
    await tick();
    s.release();
    expect(await later).toBe("NotFound");
    await here.close();
    await elsewhere.close();
  });

  it("kept warm: a grant removed during a silence longer than the TTL is known, with no read on the request path", async () => {
    const s = slowStore();
    const answering = setInterval(s.release, 5); // reads answer within 5 ms
    const ttlMs = 1_200;
    const silence = () => new Promise((r) => setTimeout(r, 2 * ttlMs + 100));
    const registry = await createModelRegistry({
      store: s.store,
      kv: createMemoryKv(),
      logger: pino({ level: "silent" }),
      ttlMs,
      keepWarmMs: 60_000,
    });
    try {
      expect(await codeOf(registry.resolve("chat", member))).toBe("OK");
      await silence();
      s.db.granted = [];
      await silence();
      const before = s.reads();
      expect(await codeOf(registry.resolve("chat", member))).toBe("NotFound");
      expect(s.reads()).toBe(before);
    } finally {
      clearInterval(answering);
      await registry.close();
    }
  });
});
