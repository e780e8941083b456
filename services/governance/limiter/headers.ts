import type { Decision } from "./limiter.js";

/** Every header rateLimitHeaders may set but retry-after: what a browser client must be allowed to read (CORS). */
export const RATE_LIMIT_HEADERS: readonly string[] = ["requests", "tokens"].flatMap((kind) =>
  ["limit", "remaining", "reset"].map((what) => `x-ratelimit-${what}-${kind}`),
);

/**
 * The OpenAI rate-limit headers of a decision, for refusals (429) and successful responses alike:
 * x-ratelimit-{limit,remaining,reset}-{requests,tokens} from the tightest limit of each kind (absent when that
 * kind is unlimited or unknown, as in a degraded decision), plus retry-after (whole seconds) on a refusal that
 * waiting can cure.
 */
export function rateLimitHeaders(decision: Decision): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const kind of ["requests", "tokens"] as const) {
    const status = decision[kind];
    if (status === null) continue;
    headers[`x-ratelimit-limit-${kind}`] = String(status.limit);
    headers[`x-ratelimit-remaining-${kind}`] = String(status.remaining);
    headers[`x-ratelimit-reset-${kind}`] = formatDuration(status.resetMs);
  }
  if (!decision.allowed && decision.retryAfterSeconds !== undefined) {
    headers["retry-after"] = String(decision.retryAfterSeconds);
  }
  return headers;
}

/** A duration the way OpenAI writes x-ratelimit-reset-*: "0s", "250ms", "1.5s", "6m0s", "2h3m4s". */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms));
  if (total === 0) return "0s";
  if (total < 1_000) return `${total}ms`;
  const hours = Math.floor(total / 3_600_000);
  const minutes = Math.floor((total % 3_600_000) / 60_000);
  const seconds = (total % 60_000) / 1_000;
  const s = `${Number.isInteger(seconds) ? seconds : seconds.toFixed(3).replace(/0+$/, "")}s`;
  if (hours > 0) return `${hours}h${minutes}m${s}`;
  if (minutes > 0) return `${minutes}m${s}`;
  return s;
}
