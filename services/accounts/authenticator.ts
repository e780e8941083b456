import { LRUCache } from "lru-cache";
import type { Logger } from "pino";
import type { Principal } from "../platform/context.js";
import { unauthenticated } from "../platform/errors.js";
import { keepWarm } from "../platform/keep-warm.js";
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
  /** How long a key in use stays loaded ahead of its expiry after its last use (platform/keep-warm.ts); 0: off. */
  keepWarmMs?: number;
  now?: () => number;
}): Promise<Authenticator> {
  const now = deps.now ?? Date.now;
  const cache = new LRUCache<string, Entry>({ ...PRECISE_TTL, max: deps.maxEntries, ttl: Math.max(deps.ttlMs, 1) });
  const negativeTtl = Math.min(deps.ttlMs, 5_000);
  const lastTouch = new LRUCache<string, number>({ max: deps.maxEntries });
  const inflight = new Map<string, Promise<Entry>>();
  // Bumped on every invalidation, so that a lookup whose database read may predate a revocation or a role change
  // cannot cache what it read once that change's invalidation has run (it would be served until the TTL).
  let generation = 0;

  // Drops cached and in-flight lookups: callers arriving after an invalidation must read the database again
  // rather than join a read that may have happened before the change committed.
  function forget(hashes: string[]): void {
    generation++;
    for (const h of hashes) {
      cache.delete(h);
      inflight.delete(h);
    }
  }
  function forgetAll(): void {
    generation++;
    cache.clear();
    inflight.clear();
  }

  const unsubscribe = await deps.kv.subscribe(
    CHANNEL,
    (message) => {
      if (message === ALL) forgetAll();
      else forget(message.split(","));
    },
    forgetAll,
  );

  const warm = keepWarm<string>({
    ttlMs: deps.ttlMs,
    keepMs: deps.keepWarmMs ?? 0,
    max: Math.min(deps.maxEntries, 1_000),
    remainingMs: (hash) => cache.getRemainingTTL(hash),
    reload: (hash) => load(hash),
    onError: (err) => deps.logger.debug({ err }, "could not reload a cached key ahead of its expiry"),
  });

  async function load(hash: string): Promise<Entry> {
    const pending = inflight.get(hash);
    if (pending) return pending;
    const started = generation;
    const p: Promise<Entry> = deps.store
      .findByKeyHash(hash)
      .then((row): Entry => {
        if (deps.ttlMs > 0 && started === generation) {
          cache.set(hash, { row }, row ? undefined : { ttl: negativeTtl });
        }
        return { row };
      })
      .finally(() => {
        // An invalidation may have replaced this lookup with a newer one; leave that one in place.
        if (inflight.get(hash) === p) inflight.delete(hash);
      });
    inflight.set(hash, p);
    return p;
  }

  function touch(keyId: string): void {
    const t = now();
    if ((lastTouch.get(keyId) ?? 0) > t - TOUCH_EVERY_MS) return;
    lastTouch.set(keyId, t);
    // A timer, not this turn nor its check phase (where undici writes a request on a reused connection): the
    // query's encoding and write then come after the request's upstream call is sent, not before it (the first
    // request after a silence always touches). A stamp kept to the minute can wait a millisecond.
    setTimeout(
      () => deps.store.touchKey(keyId).catch((err: unknown) => deps.logger.debug({ err }, "could not record key use")),
      1,
    );
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
      warm.used(hash);
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
      forget(keyHashes);
      await broadcast(keyHashes.join(","));
    },
    async invalidateAll() {
      forgetAll();
      await broadcast(ALL);
    },
    async close() {
      warm.close();
      await unsubscribe();
    },
  };
}
