/**
 * Reloads the entries of a per-process TTL cache that are in use before they expire, off the request path.
 *
 * The TTL of the key, model and budget caches bounds how stale an entry can be when an invalidation broadcast is lost.
 * Its cost was paid by requests: under steady traffic, one request per entry and per TTL waited for the database; after
 * a silence longer than the TTL, the first request waited for all three (7 to 9 ms measured, after 65 s). Here, every
 * `ttlMs / 3`, an entry used within the last `keepMs` with half its TTL or less left is reloaded, a few at a time,
 * through the cache's own loader (which drops a read that an invalidation overtook). So an entry still lives its TTL
 * at most from its last read of the database, and its first half as before; it is reloaded at an age between one
 * half and five sixths of the TTL (the margin absorbs a late timer). Nothing is read more often than every half TTL,
 * and only for entries in use.
 */

export interface KeepWarm<K> {
  /** Notes a use of `key` (found or loaded, not a miss): it is kept loaded for `keepMs` after its last use. */
  used(key: K): void;
  /** Keys kept loaded now. */
  size(): number;
  /** Runs one pass now (tests); resolves when its reloads are done. */
  pass(): Promise<void>;
  close(): void;
}

export interface KeepWarmOptions<K> {
  /** The cache's TTL. */
  ttlMs: number;
  /** How long after its last use an entry is kept loaded; 0 turns keeping warm off. */
  keepMs: number;
  /** Keys kept at most; a key used while that many are kept is left to expire as before. */
  max: number;
  /** Milliseconds before `key` expires from the cache: 0 when it is gone (it is then loaded again, if still in use). */
  remainingMs: (key: K) => number;
  /** Loads `key` into the cache. */
  reload: (key: K) => Promise<unknown>;
  /** Reloads at once (default 2: a background pass must not take the pool from requests). */
  concurrency?: number;
  onError?: (err: unknown) => void;
}

/** Below this TTL nothing is kept warm: a pass would run too often for what it saves. */
const MIN_TTL_MS = 1_000;

export function keepWarm<K>(opts: KeepWarmOptions<K>): KeepWarm<K> {
  const every = opts.ttlMs / 3;
  const off = opts.keepMs <= 0 || opts.ttlMs < MIN_TTL_MS;
  // The pass number of each key's last use: one Map write per request, no clock read.
  const lastUse = new Map<K, number>();
  const keepPasses = Math.ceil(opts.keepMs / every);
  let passNo = 0;
  let running: Promise<void> | undefined;

  async function run(): Promise<void> {
    passNo++;
    const due: K[] = [];
    for (const [key, at] of lastUse) {
      if (passNo - at > keepPasses) lastUse.delete(key);
      else if (opts.remainingMs(key) <= opts.ttlMs / 2) due.push(key);
    }
    let next = 0;
    const worker = async () => {
      while (next < due.length) {
        const key = due[next++] as K;
        await opts.reload(key).catch((err: unknown) => opts.onError?.(err));
      }
    };
    await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 2, due.length) }, worker));
  }

  function pass(): Promise<void> {
    running ??= run().finally(() => {
      running = undefined;
    });
    return running;
  }

  const timer = off ? undefined : setInterval(() => void pass(), every);
  timer?.unref();

  return {
    used(key) {
      if (off || (lastUse.size >= opts.max && !lastUse.has(key))) return;
      lastUse.set(key, passNo);
    },
    size: () => lastUse.size,
    pass,
    close() {
      clearInterval(timer);
      lastUse.clear();
    },
  };
}
