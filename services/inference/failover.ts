import type { Lease, ProviderRoute, ProviderRouter } from "./provider-router.js";
import { UpstreamError, type UpstreamTarget } from "./upstream-client.js";

/** Connection settings of one provider: its own total timeout bounds every phase. */
export function upstreamTarget(
  p: ProviderRoute,
  t: { connectTimeoutMs: number; firstTokenTimeoutMs: number; idleTimeoutMs: number },
): UpstreamTarget {
  const totalMs = Math.max(1, p.timeoutSeconds) * 1000;
  return {
    baseUrl: p.baseUrl,
    apiKey: p.apiKey,
    timeouts: {
      connectMs: t.connectTimeoutMs,
      headersMs: totalMs,
      firstTokenMs: Math.min(t.firstTokenTimeoutMs, totalMs),
      idleMs: Math.min(t.idleTimeoutMs, totalMs),
      totalMs,
    },
  };
}

/**
 * The time one call spent waiting on its upstreams: the union of its attempts' intervals, so that retries add up and
 * parallel batches (embeddings) count once. Waiting for a provider's slot is the gateway's time, not the upstream's.
 */
export interface UpstreamClock {
  /** Milliseconds so far. */
  readonly ms: number;
  start(): void;
  stop(): void;
}

export function createUpstreamClock(): UpstreamClock {
  let active = 0;
  let since = 0;
  let ms = 0;
  return {
    get ms() {
      return active > 0 ? ms + (performance.now() - since) : ms;
    },
    start() {
      if (active++ === 0) since = performance.now();
    },
    stop() {
      if (--active === 0) ms += performance.now() - since;
    },
  };
}

/** The response header that carries the upstream time (W3C Server-Timing; the REST bridge adds its own entry). */
export const SERVER_TIMING = "server-timing";

/** `upstream;dur=<ms>`: the Server-Timing entry of a call's upstream time. */
export function upstreamTiming(clock: UpstreamClock): string {
  return `upstream;dur=${clock.ms.toFixed(2)}`;
}

/**
 * Runs `attempt` on the model's providers until one succeeds. Connect errors, 5xx, 429 and a refused provider key
 * (401/403) are retried on a provider not tried yet (at most `maxAttempts` in all); anything else, or the last failure, is thrown as the UpstreamError
 * for the caller to translate. Callers use it only while nothing has reached their client. Timeouts and protocol
 * errors count against the provider's health without being retried (the request may have run). With `hold`, a
 * successful attempt keeps its lease (a stream in progress): the caller releases it. With `clock`, each attempt is
 * timed on it.
 */
export async function withFailover<T>(
  router: ProviderRouter,
  providers: ProviderRoute[],
  maxAttempts: number,
  signal: AbortSignal,
  attempt: (lease: Lease) => Promise<T>,
  opts: { hold?: boolean; clock?: UpstreamClock } = {},
): Promise<T> {
  const tried = new Set<string>();
  const clock = opts.clock;
  for (;;) {
    const lease = await router.acquire(providers, tried, signal);
    tried.add(lease.provider.id);
    clock?.start();
    try {
      const out = await attempt(lease);
      clock?.stop();
      if (!opts.hold) lease.release("ok");
      return out;
    } catch (err) {
      clock?.stop();
      if (!(err instanceof UpstreamError)) {
        lease.release("neutral");
        throw err;
      }
      const f = err.failure;
      lease.release(err.retryable || f.kind === "timeout" || f.kind === "protocol" ? "failure" : "neutral");
      const more = tried.size < maxAttempts && providers.some((p) => !tried.has(p.id));
      if (err.retryable && more && !signal.aborted) continue;
      throw err;
    }
  }
}
