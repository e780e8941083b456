import type { HitResult, KvStore } from "./kv.js";

/**
 * The in-process KvStore: one Map, TTLs honoured lazily on read and by a periodic (unref'd) sweep, pub/sub
 * delivered asynchronously to subscribers of this process only. Every operation runs synchronously inside its
 * promise, so incrBy/hit are atomic by construction.
 */
export function createMemoryKv(opts?: { now?: () => number }): KvStore {
  const now = opts?.now ?? Date.now;
  const entries = new Map<string, Entry>();
  const channels = new Map<string, Set<Subscription>>();
  let closed = false;

  const sweep = setInterval(() => {
    const t = now();
    for (const [key, entry] of entries) {
      if (entry.expiresAt !== null && entry.expiresAt <= t) entries.delete(key);
    }
  }, SWEEP_INTERVAL_MS);
  sweep.unref();

  function live(key: string): Entry | undefined {
    const entry = entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt !== null && entry.expiresAt <= now()) {
      entries.delete(key);
      return undefined;
    }
    return entry;
  }

  function ensureOpen(): void {
    if (closed) throw new Error("KvStore (memory) is closed");
  }

  function integerValue(entry: Entry | undefined): number {
    if (entry === undefined) return 0;
    if (!INTEGER_RE.test(entry.value)) throw new Error("ERR value is not an integer or out of range");
    const n = Number(entry.value);
    if (!Number.isSafeInteger(n)) throw new Error("ERR value is not an integer or out of range");
    return n;
  }

  return {
    kind: "memory",

    async get(key) {
      ensureOpen();
      return live(key)?.value ?? null;
    },

    async set(key, value, ttlMs) {
      ensureOpen();
      const ttl = optionalTtl(ttlMs);
      entries.set(key, { value, expiresAt: ttl === undefined ? null : now() + ttl });
    },

    async del(...keys) {
      ensureOpen();
      let n = 0;
      for (const key of new Set(keys)) {
        if (live(key) !== undefined) {
          entries.delete(key);
          n++;
        }
      }
      return n;
    },

    async pttl(key) {
      ensureOpen();
      const entry = live(key);
      if (entry === undefined) return -2;
      if (entry.expiresAt === null) return -1;
      return entry.expiresAt - now();
    },

    async incrBy(key, amount, ttlMs) {
      ensureOpen();
      assertInteger("amount", amount);
      const ttl = requiredTtl("ttlMs", ttlMs);
      const entry = live(key);
      const next = integerValue(entry) + amount;
      if (!Number.isSafeInteger(next)) throw new Error("ERR increment or decrement would overflow");
      const expiresAt = entry?.expiresAt ?? now() + ttl;
      entries.set(key, { value: String(next), expiresAt });
      return next;
    },

    async hit(key, cost, limit, windowMs): Promise<HitResult> {
      ensureOpen();
      assertInteger("cost", cost);
      assertInteger("limit", limit);
      const window = requiredTtl("windowMs", windowMs);
      const entry = live(key);
      let count = integerValue(entry);
      let allowed = false;
      let expiresAt = entry?.expiresAt ?? null;
      if (count + cost <= limit) {
        count += cost;
        allowed = true;
        if (expiresAt === null) expiresAt = now() + window;
        entries.set(key, { value: String(count), expiresAt });
      } else if (entry !== undefined && expiresAt === null) {
        // A window key without expiry (written by set()) must not block forever.
        expiresAt = now() + window;
        entry.expiresAt = expiresAt;
      }
      const resetMs = expiresAt === null ? 0 : Math.max(0, expiresAt - now());
      return { allowed, count, resetMs };
    },

    async publish(channel, message) {
      ensureOpen();
      const subs = channels.get(channel);
      if (subs === undefined) return;
      for (const sub of subs) {
        queueMicrotask(() => {
          // Unsubscribed between publish and delivery: drop, like a Redis subscriber that has left.
          if (!sub.active) return;
          try {
            sub.onMessage(message);
          } catch (err) {
            process.emitWarning(`KvStore (memory) subscriber of "${channel}" threw: ${String(err)}`);
          }
        });
      }
    },

    // onReset is never called: an in-process store cannot miss messages.
    async subscribe(channel, onMessage) {
      ensureOpen();
      const sub: Subscription = { onMessage, active: true };
      let subs = channels.get(channel);
      if (subs === undefined) {
        subs = new Set();
        channels.set(channel, subs);
      }
      subs.add(sub);
      return async () => {
        if (!sub.active) return;
        sub.active = false;
        const current = channels.get(channel);
        if (current === undefined) return;
        current.delete(sub);
        if (current.size === 0) channels.delete(channel);
      };
    },

    async ping() {
      ensureOpen();
    },

    async close() {
      if (closed) return;
      closed = true;
      clearInterval(sweep);
      for (const subs of channels.values()) for (const sub of subs) sub.active = false;
      channels.clear();
      entries.clear();
    },
  };
}

interface Entry {
  value: string;
  /** Epoch ms (per `now`) at which the entry expires; null without expiry. */
  expiresAt: number | null;
}

interface Subscription {
  onMessage: (message: string) => void;
  active: boolean;
}

const SWEEP_INTERVAL_MS = 30_000;
const INTEGER_RE = /^-?\d+$/;

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
