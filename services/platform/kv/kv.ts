/**
 * The key-value store every process-shared feature stands on (auth cache invalidation, login throttling, later
 * rate limits and budgets). Two implementations honour one contract (kv.contract.ts): Redis when REDIS_URL is
 * set, an in-process store otherwise.
 */
export interface KvStore {
  /** "redis" or "memory", for health output and logs. */
  readonly kind: "redis" | "memory";
  get(key: string): Promise<string | null>;
  /** Sets a value; `ttlMs` > 0 makes it expire. */
  set(key: string, value: string, ttlMs?: number): Promise<void>;
  /** Deletes keys; returns how many existed. */
  del(...keys: string[]): Promise<number>;
  /** Milliseconds left before `key` expires; -1 without expiry, -2 when missing (Redis PTTL semantics). */
  pttl(key: string): Promise<number>;
  /**
   * Atomically adds `amount` to the integer at `key` and returns the new value; when the key is created by this
   * call it expires after `ttlMs`. Never leaves a key without expiry.
   */
  incrBy(key: string, amount: number, ttlMs: number): Promise<number>;
  /**
   * Fixed-window hit counter, atomic: adds `cost` to the window `key` only if the total stays within `limit`.
   * Returns whether it was allowed, the count after the call, and the milliseconds until the window resets.
   */
  hit(key: string, cost: number, limit: number, windowMs: number): Promise<HitResult>;
  /** Broadcasts `message` to every subscriber of `channel` in every process sharing the store. */
  publish(channel: string, message: string): Promise<void>;
  /**
   * Subscribes to a channel. `onReset` runs when messages may have been missed (a reconnect), so that
   * subscribers can drop what they cached. Returns an unsubscribe function.
   */
  subscribe(channel: string, onMessage: (message: string) => void, onReset?: () => void): Promise<() => Promise<void>>;
  /** Resolves when the store answers; rejects otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface HitResult {
  allowed: boolean;
  count: number;
  resetMs: number;
}
