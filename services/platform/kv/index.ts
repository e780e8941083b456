import type { KvStore } from "./kv.js";
import { createMemoryKv } from "./memory-kv.js";

export type { HitResult, KvStore } from "./kv.js";
export { createMemoryKv } from "./memory-kv.js";

/** Namespace of every key and channel in a Redis shared with other applications. */
export const REDIS_KEY_PREFIX = "passerelle:";

/**
 * Redis when `redisUrl` is set (rejects with a clear error if it cannot be reached within ~5 s), the in-process
 * store otherwise.
 */
export async function createKv(redisUrl: string | undefined): Promise<KvStore> {
  if (!redisUrl) return createMemoryKv();
  // Loaded only when used: ioredis weighs ~25 MB that the embedded default never needs.
  const { createRedisKv } = await import("./redis-kv.js");
  return createRedisKv(redisUrl, { keyPrefix: REDIS_KEY_PREFIX });
}
