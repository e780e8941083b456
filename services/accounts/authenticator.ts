import { LRUCache } from "lru-cache";
import type { Logger } from "pino";
import type { Principal } from "../platform/context.js";
import { unauthenticated } from "../platform/errors.js";
import type { KvStore } from "../platform/kv/kv.js";
import { PRECISE_TTL } from "../platform/ttl-cache.js";
import type { AccountStore, KeyPrincipalRow } from "./account-store.js";
import { hashApiKey } from "./secrets.js";

const CHANNEL = "passerelle:auth:invalidate";
const ALL = "*";
const TOUCH_EVERY_MS = 60_000;

export interface Authenticator {
  authenticate(token: string): Promise<Principal>;
  /** Drops a key from every process's cache (revocation, deletion, a change of its limits). */
  invalidateKeys(keyHashes: string[]): Promise<void>;
  /** Drops every cached key on every process (role or user changes). */
  invalidateAll(): Promise<void>;
  close(): Promise<void>;
}

type Entry = { row: KeyPrincipalRow } | { row: null };

/**
 * Verifies API keys with a bounded per-process cache in front of one indexed query. Revocations and account
 * changes are broadcast through the KV store (Redis pub/sub across processes), so they take effect at once
 * everywhere; if the subscription drops, the whole cache is discarded. Expiry is checked on every call, from the
 * cached timestamps.
 */
export async function createAuthenticator(deps: {
  store: AccountStore;
  kv: KvStore;
  logger: Logger;
  ttlMs: number;
  maxEntries: number;
  now?: () => number;
}): Promise<Authenticator> {
  const now = deps.now ?? Date.now;
  const cache = new LRUCache<string, Entry>({ ...PRECISE_TTL, max: deps.maxEntries, ttl: Math.max(deps.ttlMs, 1) });
  const negativeTtl = Math.min(deps.ttlMs, 5_000);
  const lastTouch = new LRUCache<string, number>({ max: deps.maxEntries });
  const inflight = new Map<string, Promise<Entry>>();

  const unsubscribe = await deps.kv.subscribe(
    CHANNEL,
    (message) => {
      if (message === ALL) cache.clear();
      else for (const hash of message.split(",")) cache.delete(hash);
    },
    () => cache.clear(),
  );

  async function load(hash: string): Promise<Entry> {
    const pending = inflight.get(hash);
    if (pending) return pending;
    const p = deps.store
      .findByKeyHash(hash)
      .then((row): Entry => {
        if (deps.ttlMs > 0) cache.set(hash, { row }, row ? undefined : { ttl: negativeTtl });
        return { row };
      })
      .finally(() => inflight.delete(hash));
    inflight.set(hash, p);
    return p;
  }

  function touch(keyId: string): void {
    const t = now();
    if ((lastTouch.get(keyId) ?? 0) > t - TOUCH_EVERY_MS) return;
    lastTouch.set(keyId, t);
    deps.store.touchKey(keyId).catch((err: unknown) => deps.logger.debug({ err }, "could not record key use"));
  }

  // The change is already committed when we broadcast: a store outage must not turn it into an error for the
  // caller. Other processes then catch up within the cache TTL.
  async function broadcast(message: string): Promise<void> {
    try {
      await deps.kv.publish(CHANNEL, message);
    } catch (err) {
      deps.logger.error(
        { err },
        "could not broadcast an auth cache invalidation; other processes catch up within the cache TTL",
      );
    }
  }

  return {
    async authenticate(token) {
      const hash = hashApiKey(token);
      const entry = cache.get(hash) ?? (await load(hash));
      const row = entry.row;
      if (!row) throw unauthenticated("Invalid API key.", "INVALID_API_KEY");
      if (row.keyRevokedAt) throw unauthenticated("This API key has been revoked.", "API_KEY_REVOKED");
      if (row.keyExpiresAt && row.keyExpiresAt.getTime() <= now()) {
        throw unauthenticated("This API key has expired.", "API_KEY_EXPIRED");
      }
      touch(row.keyId);
      return {
        userId: row.userId,
        email: row.email,
        name: row.name,
        roleId: row.roleId,
        roleName: row.roleName,
        permissions: new Set(row.permissions),
        organizationId: row.organizationId,
        userExpiresAt: row.userExpiresAt,
        keyId: row.keyId,
        keyExpiresAt: row.keyExpiresAt,
        keyLimits: row.keyLimits,
      };
    },
    async invalidateKeys(keyHashes) {
      if (keyHashes.length === 0) return;
      for (const h of keyHashes) cache.delete(h);
      await broadcast(keyHashes.join(","));
    },
    async invalidateAll() {
      cache.clear();
      await broadcast(ALL);
    },
    async close() {
      await unsubscribe();
    },
  };
}
