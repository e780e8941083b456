import { Code } from "@connectrpc/connect";
import { rpcError, unavailable } from "../platform/errors.js";

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
  /** Requests in flight at most across all worker processes; 0 = unlimited (see `RouterOptions.workers`). */
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
  /** Requests queued for a free slot, each counted once (see `State.queued`). */
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
  /** Consecutive failures that eject a provider (the error-ratio rule, `ERROR_RATIO_RULE`, applies as well). */
  ejectAfterFailures: number;
  /** The error-ratio rule's threshold, in % (default `ERROR_RATIO_RULE.maxFailureRatio`); 100 turns the rule off. */
  ejectErrorPercent?: number;
  /** How long an ejected provider rests before a health probe. */
  cooldownMs: number;
  /** Probes a provider (its /health); resolves true when healthy. Never a billed completion. */
  probe(provider: ProviderRoute): Promise<boolean>;
  /**
   * Worker processes serving, this one included (PASSERELLE_WORKERS; default 1), each with its own router. A provider's
   * `maxConcurrency` is its total, so each worker admits ceil(maxConcurrency / workers): a static split needs no
   * shared counter on the hot path. Rounding up may exceed the total by at most workers - 1, and a worker whose share
   * is full queues even while another has room; both are accepted as the price of staying local.
   */
  workers?: number;
  now?: () => number;
  random?: () => number;
}

/**
 * Ejection on a high error ratio, beside the consecutive-failure rule (which a provider failing every other request
 * never trips). Over a provider's last `window` outcomes ("neutral" ones, i.e. the client's own doing, not counted),
 * it is ejected once at least `minSamples` are known and more than `maxFailureRatio` of them failed.
 * - window 50: enough that a healthy provider's occasional failure weighs 2 %, small enough to follow a change
 *   within a few seconds of traffic; a count, not a time span, so a quiet provider is judged on real requests.
 * - minSamples 20: never judge on a handful (3 failures out of 5 say little).
 * - maxFailureRatio 0.4: a provider failing about half of its requests is out within ~20 of them, while one at a
 *   10 % error rate trips it with a negligible probability (9+ failures of 20: ~6e-5; 21+ of 50: ~4e-9).
 */
export const ERROR_RATIO_RULE = { window: 50, minSamples: 20, maxFailureRatio: 0.4 } as const;

interface State {
  inFlight: number;
  failures: number;
  /** Ring of the last outcomes counted by `ERROR_RATIO_RULE` (1 = failure), its next slot, fill and failure count. */
  outcomes: Uint8Array;
  next: number;
  samples: number;
  failed: number;
  ejectedUntil: number | null;
  probing: boolean;
  /** Wake-ups of the requests that wait for a slot here or on another provider of their model (any one will do). */
  waiters: Array<() => void>;
  /**
   * Requests waiting counted against this provider. A waiting request may take a slot on any of its candidates, yet
   * it is counted once, on one of them: the least loaded by weight, where the router would send it first, so that
   * the sum over a model's providers is the number of requests waiting for that model.
   */
  queued: number;
}

/**
 * Chooses a provider per request: among the healthy ones not yet tried, two picked at random (weighted), the one
 * with fewer requests in flight relative to its weight wins ("power of two choices"). Honours each provider's max
 * concurrency (its share in this worker) with a bounded wait. Passive health: consecutive failures or a high error
 * ratio eject a provider; after a cool-down a `/health` probe decides whether it comes back, with a clean record.
 */
export function createProviderRouter(opts: RouterOptions) {
  const now = opts.now ?? Date.now;
  const random = opts.random ?? Math.random;
  const workers = Math.max(1, opts.workers ?? 1);
  const maxFailureRatio =
    opts.ejectErrorPercent === undefined ? ERROR_RATIO_RULE.maxFailureRatio : opts.ejectErrorPercent / 100;
  const states = new Map<string, State>();

  const state = (id: string): State => {
    let s = states.get(id);
    if (!s) {
      s = { inFlight: 0, ejectedUntil: null, probing: false, waiters: [], queued: 0, ...cleanRecord() };
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
            Object.assign(s, cleanRecord());
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

  const hasRoom = (p: ProviderRoute) =>
    p.maxConcurrency <= 0 || state(p.id).inFlight < Math.ceil(p.maxConcurrency / workers);
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

  function leastLoaded(list: ProviderRoute[]): ProviderRoute {
    return list.reduce((best, p) => (load(p) < load(best) ? p : best));
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
        if (outcome !== "neutral") {
          s.failures = outcome === "ok" ? 0 : s.failures + 1;
          if (record(s, outcome === "failure", maxFailureRatio) || s.failures >= opts.ejectAfterFailures) {
            if (s.ejectedUntil === null) s.ejectedUntil = now() + opts.cooldownMs;
          }
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
        // A caller that left is a cancelled request (499), whatever the providers' load: never "at capacity".
        if (signal?.aborted) throw rpcError(Code.Canceled, "The request was cancelled.", "CANCELLED");
        const left = deadline - now();
        if (left <= 0) {
          throw unavailable("The model is at capacity; try again shortly.", "MODEL_AT_CAPACITY", {
            retryAfterSeconds: 1,
          });
        }
        const counted = state(leastLoaded(live).id);
        counted.queued++;
        // Wait for any of them to free a slot, the deadline, or the caller leaving.
        await new Promise<void>((resolve) => {
          const wake = () => {
            clearTimeout(timer);
            counted.queued--;
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
      return [...states].map(([id, s]) => view(id, s));
    },

    snapshotOf(providers: ProviderRoute[]): ProviderState[] {
      return providers.map((p) => view(p.id, state(p.id)));
    },

    /**
     * The state of each of `ids` (every provider the registry knows): one not routed to yet is healthy and idle. What
     * the router keeps of a provider not among them (deleted since) is dropped, unless a request still holds or waits
     * for one of its slots (then at a later call).
     */
    listed(ids: Iterable<string>): ProviderState[] {
      const keep = new Set(ids);
      for (const [id, s] of states) {
        if (!keep.has(id) && s.inFlight === 0 && s.waiters.length === 0) states.delete(id);
      }
      return [...keep].map((id) => {
        const s = states.get(id);
        return s ? view(id, s) : { ...NEVER_ROUTED, id };
      });
    },
  };
}

const NEVER_ROUTED = { inFlight: 0, waiting: 0, healthy: true, consecutiveFailures: 0, ejectedUntil: null };

function view(id: string, s: State): ProviderState {
  return {
    id,
    inFlight: s.inFlight,
    waiting: s.queued,
    healthy: s.ejectedUntil === null,
    consecutiveFailures: s.failures,
    ejectedUntil: s.ejectedUntil,
  };
}

/** A provider's outcome record as new (or re-admitted): no failures, an empty error-ratio window. */
function cleanRecord() {
  return { failures: 0, outcomes: new Uint8Array(ERROR_RATIO_RULE.window), next: 0, samples: 0, failed: 0 };
}

/** Adds one outcome to the error-ratio window; true when the window now calls for ejection. */
function record(s: State, failure: boolean, maxFailureRatio: number): boolean {
  const { window, minSamples } = ERROR_RATIO_RULE;
  if (s.samples === window) s.failed -= s.outcomes[s.next] as number;
  else s.samples++;
  s.outcomes[s.next] = failure ? 1 : 0;
  s.failed += failure ? 1 : 0;
  s.next = (s.next + 1) % window;
  return s.samples >= minSamples && s.failed > maxFailureRatio * s.samples;
}

export type ProviderRouter = ReturnType<typeof createProviderRouter>;
