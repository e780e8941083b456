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
 * Runs `attempt` on the model's providers until one succeeds. Connect errors, 5xx, 429 and a refused provider key
 * (401/403) are retried on a provider not tried yet (at most `maxAttempts` in all); anything else, or the last failure, is thrown as the UpstreamError
 * for the caller to translate. Callers use it only while nothing has reached their client. Timeouts and protocol
 * errors count against the provider's health without being retried (the request may have run). With `hold`, a
 * successful attempt keeps its lease (a stream in progress): the caller releases it.
 */
export async function withFailover<T>(
  router: ProviderRouter,
  providers: ProviderRoute[],
  maxAttempts: number,
  signal: AbortSignal,
  attempt: (lease: Lease) => Promise<T>,
  hold = false,
): Promise<T> {
  const tried = new Set<string>();
  for (;;) {
    const lease = await router.acquire(providers, tried, signal);
    tried.add(lease.provider.id);
    try {
      const out = await attempt(lease);
      if (!hold) lease.release("ok");
      return out;
    } catch (err) {
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
