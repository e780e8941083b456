import { Redis, type RedisOptions } from "ioredis";
import type { HitResult, KvStore } from "./kv.js";

/** How long createRedisKv keeps trying to reach Redis before giving up. */
const CONNECT_DEADLINE_MS = 5_000;
/** Any single command slower than this means Redis is in trouble: fail it rather than hang the request. */
const COMMAND_TIMEOUT_MS = 3_000;

/**
 * INCRBY, then PEXPIRE when the key has no expiry (just created, or written without TTL by someone else), so the
 * key never lives forever and later increments keep the original window. One key: Redis Cluster safe.
 */
const INCR_BY_LUA = `
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return n
`;

/**
 * Fixed window: adds ARGV[1] (cost) only when the total stays within ARGV[2] (limit); the window (ARGV[3] ms)
 * starts with the first counted hit. Returns {allowed 0|1, count, ms until reset (0 when no window exists)}.
 */
const HIT_LUA = `
local cost = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local current = redis.call('GET', KEYS[1])
local count = 0
if current then
  count = tonumber(current)
  if count == nil then return redis.error_reply('ERR value is not an integer or out of range') end
end
local allowed = 0
if count + cost <= limit then
  count = redis.call('INCRBY', KEYS[1], cost)
  allowed = 1
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -1 then
  redis.call('PEXPIRE', KEYS[1], window)
  ttl = window
elseif ttl == -2 then
  ttl = 0
end
return {allowed, count, ttl}
`;

interface KvScripts {
  kvIncrBy(key: string, amount: number, ttlMs: number): Promise<unknown>;
  kvHit(key: string, cost: number, limit: number, windowMs: number): Promise<unknown>;
}

interface Subscription {
  onMessage: (message: string) => void;
  onReset: (() => void) | undefined;
}

interface Channel {
  subs: Set<Subscription>;
  /** Resolves once Redis confirmed the SUBSCRIBE that created this entry. */
  subscribed: Promise<void>;
}

/**
 * Connects to Redis (`redis://` or `rediss://` URL) and resolves once it answers; rejects after ~5 s otherwise.
 * Keys and channel names are prefixed with `opts.keyPrefix`.
 *
 * Failure policy: the command connection has no offline queue and never retries a command (a blip fails the
 * in-flight and new commands at once instead of queueing them or replaying a non-idempotent INCRBY), and every
 * command times out after 3 s. Subscriptions live on a second connection, created on the first subscribe(), that
 * resubscribes by itself after a reconnect and then calls every onReset.
 */
export async function createRedisKv(url: string, opts?: { keyPrefix?: string }): Promise<KvStore> {
  const prefix = opts?.keyPrefix ?? "";
  const where = describeUrl(url);
  let lastError: Error | undefined;

  const options: RedisOptions = {
    lazyConnect: true,
    connectTimeout: CONNECT_DEADLINE_MS,
    commandTimeout: COMMAND_TIMEOUT_MS,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    retryStrategy: (times) => Math.min(times * 100, 2_000),
  };
  const client = new Redis(url, options);
  client.on("error", (err: Error) => {
    lastError = err;
  });
  client.defineCommand("kvIncrBy", { lua: INCR_BY_LUA, numberOfKeys: 1 });
  client.defineCommand("kvHit", { lua: HIT_LUA, numberOfKeys: 1 });
  const scripts = client as unknown as KvScripts;

  try {
    await waitUntilReady(client, CONNECT_DEADLINE_MS);
  } catch (err) {
    client.disconnect();
    const cause = lastError ?? err;
    throw new Error(
      `Redis at ${where} is unreachable (no answer within ${CONNECT_DEADLINE_MS} ms): ${errorMessage(cause)}`,
      { cause },
    );
  }

  let closed = false;
  let sub: Redis | undefined;
  let subEverReady = false;
  const channels = new Map<string, Channel>();

  function ensureOpen(): void {
    if (closed) throw new Error("KvStore (redis) is closed");
  }

  function dispatch(fullChannel: string, message: string): void {
    const channel = channels.get(fullChannel);
    if (channel === undefined) return;
    for (const s of [...channel.subs]) {
      // Unsubscribed by an earlier listener of this same message: skip.
      if (!channel.subs.has(s)) continue;
      guard(fullChannel, () => s.onMessage(message));
    }
  }

  async function resubscribeAndReset(conn: Redis): Promise<void> {
    const names = [...channels.keys()];
    try {
      if (names.length > 0) await conn.subscribe(...names);
    } catch {
      // The connection dropped again: the next "ready" resubscribes. Reset anyway, messages were missed.
    }
    for (const [name, channel] of channels) {
      for (const s of [...channel.subs]) {
        if (s.onReset !== undefined) guard(name, s.onReset);
      }
    }
  }

  function subscriber(): Redis {
    if (sub !== undefined) return sub;
    const conn: Redis = client.duplicate({
      lazyConnect: false,
      // Subscribing while reconnecting waits for the connection (bounded by 2 reconnect attempts).
      enableOfflineQueue: true,
      maxRetriesPerRequest: 2,
      // We resubscribe ourselves, so that onReset runs after the subscriptions are back.
      autoResubscribe: false,
    });
    conn.on("error", () => {
      // Reconnects are handled by ioredis; the failure surfaces through subscribe() and onReset.
    });
    conn.on("message", (channel: string, message: string) => dispatch(channel, message));
    conn.on("ready", () => {
      if (!subEverReady) {
        subEverReady = true;
        return;
      }
      void resubscribeAndReset(conn);
    });
    sub = conn;
    return conn;
  }

  return {
    kind: "redis",

    async get(key) {
      ensureOpen();
      return client.get(prefix + key);
    },

    async set(key, value, ttlMs) {
      ensureOpen();
      const ttl = optionalTtl(ttlMs);
      if (ttl === undefined) await client.set(prefix + key, value);
      else await client.set(prefix + key, value, "PX", ttl);
    },

    async del(...keys) {
      ensureOpen();
      if (keys.length === 0) return 0;
      return client.del(...keys.map((k) => prefix + k));
    },

    async pttl(key) {
      ensureOpen();
      return client.pttl(prefix + key);
    },

    async incrBy(key, amount, ttlMs) {
      ensureOpen();
      assertInteger("amount", amount);
      const ttl = requiredTtl("ttlMs", ttlMs);
      return toInteger(await scripts.kvIncrBy(prefix + key, amount, ttl));
    },

    async hit(key, cost, limit, windowMs): Promise<HitResult> {
      ensureOpen();
      assertInteger("cost", cost);
      assertInteger("limit", limit);
      const window = requiredTtl("windowMs", windowMs);
      const reply = await scripts.kvHit(prefix + key, cost, limit, window);
      if (!Array.isArray(reply) || reply.length !== 3) throw new Error(`KvStore (redis): bad hit reply ${reply}`);
      const [allowed, count, resetMs] = reply.map(toInteger) as [number, number, number];
      return { allowed: allowed === 1, count, resetMs };
    },

    async publish(channel, message) {
      ensureOpen();
      await client.publish(prefix + channel, message);
    },

    async subscribe(channel, onMessage, onReset) {
      ensureOpen();
      const full = prefix + channel;
      const s: Subscription = { onMessage, onReset };
      let entry = channels.get(full);
      if (entry === undefined) {
        const conn = subscriber();
        const created: Channel = { subs: new Set(), subscribed: conn.subscribe(full).then(() => undefined) };
        entry = created;
        channels.set(full, created);
        // Forget the channel if its SUBSCRIBE fails and nobody else joined it meanwhile.
        created.subscribed.catch(() => {
          if (channels.get(full) === created && created.subs.size === 0) channels.delete(full);
        });
      }
      entry.subs.add(s);
      try {
        await entry.subscribed;
      } catch (err) {
        entry.subs.delete(s);
        if (channels.get(full) === entry && entry.subs.size === 0) channels.delete(full);
        throw err;
      }
      let done = false;
      const current = entry;
      return async () => {
        if (done) return;
        done = true;
        current.subs.delete(s);
        if (current.subs.size > 0 || channels.get(full) !== current) return;
        channels.delete(full);
        // Best effort: locally the subscription is gone already, and a reconnect drops it server-side.
        await sub?.unsubscribe(full).catch(() => undefined);
      };
    },

    async ping() {
      ensureOpen();
      await client.ping();
    },

    async close() {
      if (closed) return;
      closed = true;
      channels.clear();
      await Promise.all([quit(client), sub === undefined ? undefined : quit(sub)]);
    },
  };
}

/** Resolves on the connection's first "ready"; rejects after `deadlineMs` (ioredis keeps retrying meanwhile). */
function waitUntilReady(client: Redis, deadlineMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => settle(new Error("timed out")), deadlineMs);
    function settle(err?: Error): void {
      clearTimeout(timer);
      client.off("ready", onReady);
      client.off("end", onEnd);
      if (err === undefined) resolve();
      else reject(err);
    }
    function onReady(): void {
      settle();
    }
    function onEnd(): void {
      settle(new Error("connection ended"));
    }
    client.once("ready", onReady);
    client.once("end", onEnd);
    // The first failure rejects connect(); the retry strategy keeps trying until the deadline.
    client.connect().catch(() => undefined);
  });
}

/** QUIT when connected, a plain disconnect otherwise (QUIT cannot be sent without a connection). */
async function quit(conn: Redis): Promise<void> {
  if (conn.status === "ready") {
    try {
      await conn.quit();
      return;
    } catch {
      // fall through
    }
  }
  conn.disconnect();
}

function guard(channel: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    process.emitWarning(`KvStore (redis) subscriber of "${channel}" threw: ${errorMessage(err)}`);
  }
}

/** The URL without its password, for error messages. */
function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparsable REDIS_URL)";
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message || err.name : String(err);
}

function toInteger(v: unknown): number {
  const n = typeof v === "number" ? v : typeof v === "string" ? Number(v) : Number.NaN;
  if (!Number.isFinite(n)) throw new Error(`KvStore (redis): expected an integer reply, got ${String(v)}`);
  return n;
}

function assertInteger(name: string, n: number): void {
  if (!Number.isSafeInteger(n)) throw new RangeError(`KvStore: ${name} must be an integer, got ${n}`);
}

/** A TTL argument that must make the key expire: a finite number > 0, rounded up to whole milliseconds. */
function requiredTtl(name: string, ms: number): number {
  if (!Number.isFinite(ms) || ms <= 0) throw new RangeError(`KvStore: ${name} must be > 0, got ${ms}`);
  return Math.ceil(ms);
}

/** set()'s optional TTL: absent or <= 0 means no expiry. */
function optionalTtl(ms: number | undefined): number | undefined {
  if (ms === undefined || ms <= 0) return undefined;
  return requiredTtl("ttlMs", ms);
}
