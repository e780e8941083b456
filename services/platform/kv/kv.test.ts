import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { createKv, createMemoryKv } from "./index.js";
import { kvContract, waitFor } from "./kv.contract.js";
import { createRedisKv } from "./redis-kv.js";

const redisUrl = process.env.PASSERELLE_TEST_REDIS_URL;

kvContract("memory", async () => createMemoryKv());

describe("createKv", () => {
  it("falls back to the in-process store without a Redis URL", async () => {
    const kv = await createKv(undefined);
    expect(kv.kind).toBe("memory");
    await kv.close();
  });
});

describe("memory KvStore", () => {
  it("honours TTLs against the injected clock", async () => {
    let t = 1_000;
    const kv = createMemoryKv({ now: () => t });
    await kv.set("k", "v", 100);
    expect(await kv.pttl("k")).toBe(100);
    t += 99;
    expect(await kv.get("k")).toBe("v");
    t += 1;
    expect(await kv.get("k")).toBeNull();
    expect(await kv.hit("w", 1, 1, 50)).toEqual({ allowed: true, count: 1, resetMs: 50 });
    t += 50;
    expect(await kv.hit("w", 1, 1, 50)).toEqual({ allowed: true, count: 1, resetMs: 50 });
    await kv.close();
  });
});

if (!redisUrl && process.env.CI) {
  describe("KvStore contract: redis", () => {
    it("needs PASSERELLE_TEST_REDIS_URL", () => {
      throw new Error(
        "PASSERELLE_TEST_REDIS_URL is not set but CI is: the Redis KvStore must be tested in CI " +
          "(e.g. PASSERELLE_TEST_REDIS_URL=redis://127.0.0.1:6379).",
      );
    });
  });
}

describe.skipIf(!redisUrl)("redis KvStore", () => {
  const url = redisUrl ?? "";
  const prefixed = () => createRedisKv(url, { keyPrefix: `test:${randomUUID()}:` });

  kvContract("redis", prefixed);

  it("createKv picks Redis when a URL is set", async () => {
    const kv = await createKv(url);
    expect(kv.kind).toBe("redis");
    await kv.ping();
    await kv.close();
  });

  it("calls onReset after the subscriber connection is killed, and messages flow again", async () => {
    const kv = await prefixed();
    const admin = new Redis(url, { lazyConnect: true });
    try {
      await admin.connect();
      const got: string[] = [];
      let resets = 0;
      const unsub = await kv.subscribe(
        "events",
        (m) => got.push(m),
        () => resets++,
      );
      await kv.publish("events", "before");
      await waitFor(() => got.length === 1, "the first message");
      expect(resets).toBe(0);

      const killed = await admin.call("CLIENT", "KILL", "TYPE", "pubsub");
      expect(Number(killed)).toBeGreaterThanOrEqual(1);
      await waitFor(() => resets === 1, "onReset after the reconnect", 10_000);

      await kv.publish("events", "after");
      await waitFor(() => got.length === 2, "a message after the reconnect");
      expect(got).toEqual(["before", "after"]);
      expect(resets).toBe(1);
      await unsub();
    } finally {
      admin.disconnect();
      await kv.close();
    }
  });

  it("keeps key prefixes apart", async () => {
    const a = await prefixed();
    const b = await prefixed();
    try {
      await a.set("shared-name", "a", 5_000);
      expect(await b.get("shared-name")).toBeNull();
      const got: string[] = [];
      const unsub = await b.subscribe("c", (m) => got.push(m));
      await a.publish("c", "from-a");
      await b.publish("c", "from-b");
      await waitFor(() => got.length >= 1, "b's own message");
      expect(got).toEqual(["from-b"]);
      await unsub();
      await a.del("shared-name");
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe("createRedisKv with Redis down", () => {
  it("rejects within a few seconds with a clear error", async () => {
    const started = Date.now();
    await expect(createRedisKv("redis://:secret@127.0.0.1:1")).rejects.toThrow(
      /Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1.* unreachable.*ECONNREFUSED/,
    );
    expect(Date.now() - started).toBeLessThan(8_000);
  }, 15_000);
});
