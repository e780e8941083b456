import { unavailable } from "../platform/errors.js";

/** One upstream that serves a model, as the router sees it. */
export interface ProviderRoute {
  id: string;
  /** The provider's API dialect (`vllm`, `tei`, `openai`): rerank speaks TEI's own to TEI. */
  type?: string;
  baseUrl: string;
  apiKey?: string;
  upstreamModel: string;
  timeoutSeconds: number;
  /** Relative share of traffic (> 0). */
  weight: number;
  /** Requests in flight at most; 0 = unlimited. */
  maxConcurrency: number;
  /** Hosting zone and size, for the carbon estimate of what it serves. */
  carbon?: { zone: string; totalParamsB: number; activeParamsB: number };
}

/** Who served a request, as governance records it (a provider without carbon data counts as world-average zero). */
export function servedBy(p: ProviderRoute | undefined) {
  return p ? { id: p.id, carbon: p.carbon ?? UNKNOWN_CARBON } : undefined;
}
const UNKNOWN_CARBON = { zone: "WOR", totalParamsB: 0, activeParamsB: 0 };

/** A provider's live state, for admins. */
export interface ProviderState {
  id: string;
  inFlight: number;
  waiting: number;
  healthy: boolean;
  consecutiveFailures: number;
  /** While ejected: when the next health probe may re-admit it (epoch ms). */
  ejectedUntil: number | null;
}

export interface Lease {
  provider: ProviderRoute;
  /** Frees the slot and records the outcome for passive health. */
  release(outcome: "ok" | "failure" | "neutral"): void;
}

export interface RouterOptions {
  /** Longest wait for a free slot when every provider is at its max concurrency. */
  queueTimeoutMs: number;
  /** Consecutive failures that eject a provider. */
  ejectAfterFailures: number;
  /** How long an ejected provider rests before a health probe. */
  cooldownMs: number;
  /** Probes a provider (its /health); resolves true when healthy. Never a billed completion. */
  probe(provider: ProviderRoute): Promise<boolean>;
  now?: () => number;
  random?: () => number;
}

interface State {
  inFlight: number;
  failures: number;
  ejectedUntil: number | null;
  probing: boolean;
  waiters: Array<() => void>;
}

/**
 * Chooses a provider per request: among the healthy ones not yet tried, two picked at random (weighted), the one
 * with fewer requests in flight relative to its weight wins ("power of two choices"). Honours each provider's max
 * concurrency with a bounded wait. Passive health: consecutive failures eject a provider; after a cool-down a
 * `/health` probe decides whether it comes back.
 */
export function createProviderRouter(opts: RouterOptions) {
  const now = opts.now ?? Date.now;
  const random = opts.random ?? Math.random;
  const states = new Map<string, State>();

  const state = (id: string): State => {
    let s = states.get(id);
    if (!s) {
      s = { inFlight: 0, failures: 0, ejectedUntil: null, probing: false, waiters: [] };
      states.set(id, s);
    }
    return s;
  };

  function healthy(p: ProviderRoute): boolean {
    const s = state(p.id);
    if (s.ejectedUntil === null) return true;
    if (now() >= s.ejectedUntil && !s.probing) {
      s.probing = true;
      opts
        .probe(p)
        .then((ok) => {
          if (ok) {
            s.ejectedUntil = null;
            s.failures = 0;
          } else s.ejectedUntil = now() + opts.cooldownMs;
        })
        .catch(() => {
          s.ejectedUntil = now() + opts.cooldownMs;
        })
        .finally(() => {
          s.probing = false;
        });
    }
    return false;
  }

  const hasRoom = (p: ProviderRoute) => p.maxConcurrency <= 0 || state(p.id).inFlight < p.maxConcurrency;
  const load = (p: ProviderRoute) => (state(p.id).inFlight + 1) / Math.max(p.weight, 1e-6);

  function weightedPick(list: ProviderRoute[]): ProviderRoute {
    const total = list.reduce((a, p) => a + Math.max(p.weight, 0), 0);
    let r = random() * total;
    for (const p of list) {
      r -= Math.max(p.weight, 0);
      if (r < 0) return p;
    }
    return list[list.length - 1] as ProviderRoute;
  }

  function choose(candidates: ProviderRoute[]): ProviderRoute | undefined {
    const open = candidates.filter(hasRoom);
    if (open.length === 0) return undefined;
    if (open.length === 1) return open[0];
    const a = weightedPick(open);
    const others = open.filter((p) => p !== a);
    const b = weightedPick(others);
    return load(a) <= load(b) ? a : b;
  }

  function lease(p: ProviderRoute): Lease {
    const s = state(p.id);
    s.inFlight++;
    let done = false;
    return {
      provider: p,
      release(outcome) {
        if (done) return;
        done = true;
        s.inFlight--;
        if (outcome === "ok") s.failures = 0;
        if (outcome === "failure" && ++s.failures >= opts.ejectAfterFailures && s.ejectedUntil === null) {
          s.ejectedUntil = now() + opts.cooldownMs;
        }
        s.waiters.shift()?.();
      },
    };
  }

  return {
    /**
     * A slot on one of `providers` not in `exclude`. Waits (bounded) when all are busy; Unavailable with a retry
     * delay when none is healthy or the wait runs out.
     */
    async acquire(providers: ProviderRoute[], exclude: ReadonlySet<string>, signal?: AbortSignal): Promise<Lease> {
      const candidates = providers.filter((p) => !exclude.has(p.id) && p.weight > 0);
      const live = candidates.filter(healthy);
      if (live.length === 0) {
        throw unavailable(
          "No healthy upstream serves this model right now; try again shortly.",
          "NO_HEALTHY_PROVIDER",
          {
            retryAfterSeconds: Math.max(1, Math.ceil(opts.cooldownMs / 1000)),
          },
        );
      }
      const deadline = now() + opts.queueTimeoutMs;
      for (;;) {
        const p = choose(live);
        if (p) return lease(p);
        const left = deadline - now();
        if (left <= 0 || signal?.aborted) {
          throw unavailable("The model is at capacity; try again shortly.", "MODEL_AT_CAPACITY", {
            retryAfterSeconds: 1,
          });
        }
        // Wait for any of them to free a slot, the deadline, or the caller leaving.
        await new Promise<void>((resolve) => {
          const wake = () => {
            clearTimeout(timer);
            signal?.removeEventListener("abort", wake);
            for (const c of live) {
              const w = state(c.id).waiters;
              const i = w.indexOf(wake);
              if (i >= 0) w.splice(i, 1);
            }
            resolve();
          };
          const timer = setTimeout(wake, left);
          signal?.addEventListener("abort", wake, { once: true });
          for (const c of live) state(c.id).waiters.push(wake);
        });
      }
    },

    /** Every provider this router has seen. */
    snapshot(): ProviderState[] {
      return [...states.entries()].map(([id, s]) => ({
        id,
        inFlight: s.inFlight,
        waiting: s.waiters.length,
        healthy: s.ejectedUntil === null,
        consecutiveFailures: s.failures,
        ejectedUntil: s.ejectedUntil,
      }));
    },

    snapshotOf(providers: ProviderRoute[]): ProviderState[] {
      return providers.map((p) => {
        const s = state(p.id);
        return {
          id: p.id,
          inFlight: s.inFlight,
          waiting: s.waiters.length,
          healthy: s.ejectedUntil === null,
          consecutiveFailures: s.failures,
          ejectedUntil: s.ejectedUntil,
        };
      });
    },
  };
}

export type ProviderRouter = ReturnType<typeof createProviderRouter>;
