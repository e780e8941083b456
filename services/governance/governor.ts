// Over 400 lines on purpose: admit and finish are one life cycle per request (limits and budget reserved together,
// either given back on any refusal, each settled and journaled exactly once); split, those guarantees would span files.
import { Code } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { Principal } from "../platform/context.js";
import { rpcError } from "../platform/errors.js";
import { uuidv7 } from "../platform/ids.js";
import type { Reservation as BudgetReservation, BudgetStore } from "./budget-store.js";
import { estimateCarbon } from "./carbon.js";
import type { Owner } from "./entities.js";
import { createHeadroom } from "./headroom.js";
import { type JournalEntry, journal, recordableModelName, statusOf } from "./journal.js";
import { rateLimitHeaders } from "./limiter/headers.js";
import { type DecisionOutcome, type Limits, type RateLimiter, UNLIMITED } from "./limiter/limiter.js";
import { costNanos, nanosToUnits } from "./money.js";
import type { UsageBuffer } from "./usage-buffer.js";

/** What governance needs to know of a model (the registry's resolved model satisfies it). */
export interface GovernedModel {
  readonly name: string;
  readonly costPromptPerMillion: number;
  readonly costCompletionPerMillion: number;
}

/** Where a request was served, for carbon: the provider's hosting zone and size. */
export interface ServedBy {
  readonly id: string;
  readonly carbon: { readonly zone: string; readonly totalParamsB: number; readonly activeParamsB: number };
}

export interface AdmitInput {
  principal: Principal;
  requestId: string;
  /** `chat.completions`, `embeddings`, … */
  endpoint: string;
  model: GovernedModel;
  /** The role's limits on the model; null = unlimited. */
  limits: Limits | null;
  /** Prompt tokens, counted by the gateway before forwarding. */
  promptTokens: number;
  /** The most the answer may generate: max_tokens, the configured default, or 0 (embeddings). */
  maxCompletionTokens: number;
}

export interface Outcome {
  /** HTTP-like status: 200, the upstream's 4xx, 499 for a client that went away, 502/503/504 for upstream failures. */
  status: number;
  errorCode?: string;
  promptTokens: number;
  completionTokens: number;
  servedBy?: ServedBy;
  /** Time to first token of a stream. */
  ttftMs?: number;
  /** Seconds of audio transcribed (audio endpoints). */
  audioSeconds?: number;
}

/** What the response shows of a settled request. */
export interface Settled {
  /** Currency units. */
  cost: number;
  carbon: { kWh: { min: number; max: number }; kgCO2eq: { min: number; max: number } };
}

export interface Admission {
  /** The usage record's id (the idempotency key of the ledger and of the budget reservation). */
  readonly usageId: string;
  /** x-ratelimit-* headers for the answer (empty when unlimited). */
  readonly headers: Readonly<Record<string, string>>;
  /** Settles the limits with the real usage and journals the usage record (which settles budgets). Once. */
  finish(outcome: Outcome): Settled;
}

export interface GovernorDeps {
  limiter: RateLimiter;
  budgets: BudgetStore;
  buffer: UsageBuffer;
  logger: Logger;
  now?: () => number;
  /** Called once per finished request (metrics), when the turn that finished it is over. */
  onFinish?: (input: AdmitInput, outcome: Outcome, seconds: number) => void;
  /**
   * Lets callers forward a call before its admission is decided when this process's last decision for the caller
   * left ample room (mayForwardEarly; headroom.ts). Worth it when reservations take a round trip (Redis); off by
   * default.
   */
  forwardEarly?: boolean;
  /**
   * Early forwarding only while fewer calls than this are open in the process (admitted or being admitted, not
   * finished; default 4). Busier, the CPU is what calls wait for: the Redis reply waits its turn in the event loop
   * anyway, and an abortable upstream call costs a controller per call. Measured on 2 vCPUs, governed, 32 concurrent
   * calls: ungated, early forwarding cut throughput by ~15 %; gated at 4, by ~3 % (within the run-to-run noise),
   * while at one call at a time it took 0.18 ms off the p50 and 0.66 ms off the p99.
   */
  forwardEarlyBelow?: number;
}

export interface Governor {
  /**
   * Reserves one request and the worst-case tokens against the role's limits, then the worst-case cost against the
   * caller's budgets, before anything is forwarded. ResourceExhausted (429) when a limit or a budget says no, with
   * the rate-limit headers in the error's metadata; Unavailable (503) when a store is down and the policy says so.
   */
  admit(input: AdmitInput): Promise<Admission>;
  /**
   * Whether `admit` will use the prompt's token count: a token limit (the role's or the key's) applies, or the
   * model is priced and the caller may have a budget. When false, callers skip counting (the tokenizer's cost grows
   * with the prompt) and admit with 0 prompt tokens; usage is still billed from the upstream's counts. A promise only
   * when whether the caller has a budget is not known yet (one lookup, which `admit` then finds cached): so a
   * deployment whose callers have neither token limits nor budgets never loads the tokenizer.
   */
  needsPromptTokens(principal: Principal, model: GovernedModel, limits: Limits | null): boolean | Promise<boolean>;
  /**
   * Journals the usage record of a request refused before its admission (a bad request, an unknown, forbidden or
   * wrong-type model): the error's status, no tokens, no cost, and the model as the caller named it (an alias stays
   * an alias; see journal.ts recordableModelName). Admission's own refusals and everything after it are recorded by
   * `admit` and `finish`: with this, every request that reaches a model-facing endpoint with a valid key has exactly
   * one record.
   */
  refusedBeforeAdmission(input: RefusalInput, err: unknown): void;
  /**
   * Whether the call may be sent upstream while `admit(input)` is being decided: early forwarding is on, the process
   * is not busy (GovernorDeps.forwardEarlyBelow), the call is counted against limits, and the last decision for its
   * caller, model and key left ample room (headroom.ts). Ask
   * just before `admit(input)`. The caller still waits for the admission before anything reaches its client, and
   * aborts the upstream call when it is refused.
   */
  mayForwardEarly(input: AdmitInput): boolean;
}

/** A request refused before its admission (see Governor.refusedBeforeAdmission). */
export interface RefusalInput {
  principal: Principal;
  requestId: string;
  endpoint: string;
  model: string;
  /** When the request started (epoch ms, `Date.now()`). */
  started: number;
}

/** Whose budgets a call of `principal` spends: the user's, and the organization's when it has one. */
function budgetOwners(principal: Principal): Owner[] {
  const owners: Owner[] = [{ kind: "user", id: principal.userId }];
  if (principal.organizationId) owners.push({ kind: "organization", id: principal.organizationId });
  return owners;
}

const ZERO_CARBON: Settled["carbon"] = { kWh: { min: 0, max: 0 }, kgCO2eq: { min: 0, max: 0 } };

export function createGovernor(deps: GovernorDeps): Governor {
  const now = deps.now ?? Date.now;
  const headroom = deps.forwardEarly ? createHeadroom({ now }) : undefined;
  /** Calls admitted (or being admitted) and not finished: this process's load, as early forwarding sees it. */
  let open = 0;
  const forwardEarlyBelow = deps.forwardEarlyBelow ?? 4;
  /** The caller the headroom tracks for `input`: only calls the limiter counts (a round trip worth overlapping). */
  const headroomKey = (input: AdmitInput) =>
    headroom && (counted(input.limits) || counted(input.principal.keyLimits))
      ? `${input.principal.userId}\n${input.model.name}\n${input.principal.keyLimits ? input.principal.keyId : ""}`
      : undefined;

  /**
   * A refused call: its error, and its usage record (status 429 or 503, no tokens, no cost). A refusal is a request
   * on a model-facing endpoint too, and operators want to see who is throttled.
   */
  function refused(
    input: AdmitInput,
    usageId: string,
    started: number,
    code: Code,
    message: string,
    reason: string,
    headers: Record<string, string>,
    retry?: number,
  ) {
    const status = code === Code.Unavailable ? 503 : 429;
    const outcome: Outcome = { status, errorCode: reason, promptTokens: 0, completionTokens: 0 };
    journal(deps, entryOf(input, usageId, started, now(), outcome, 0n, ZERO_CARBON));
    const err = rpcError(code, message, reason, { retryAfterSeconds: retry });
    for (const [k, v] of Object.entries(headers)) err.metadata.set(k, v);
    return err;
  }

  /** Settles in the background: a failed settlement costs the window's precision, never the request. */
  function settle(reservation: Parameters<RateLimiter["settle"]>[0], tokens: number): void {
    deps.limiter
      .settle(reservation, tokens)
      .catch((err: unknown) => deps.logger.warn({ err, tokens }, "rate-limit settlement failed"));
  }

  /** Gives back a budget reservation that the request will not use: its lease's share, or its own row. */
  function giveBack(usageId: string, held: (BudgetReservation & { admitted: true }) | undefined): void {
    if (held?.lease) held.lease.finish(0n);
    else if (held && held.owners.length > 0) {
      deps.budgets.release(usageId).catch((err: unknown) => deps.logger.warn({ err }, "budget release failed"));
    }
  }

  const tokenLimited = (l: { tokensPerMinute: number | null; tokensPerDay: number | null } | null | undefined) =>
    l != null && (l.tokensPerMinute != null || l.tokensPerDay != null);

  /** Admit's work: see Governor.admit. */
  async function admitOnce(input: AdmitInput): Promise<Admission> {
    const started = now();
    const { principal, model } = input;
    const estimate = input.promptTokens + input.maxCompletionTokens;
    const usageId = uuidv7();
    const owners = budgetOwners(principal);
    const prices = model;
    const worst = costNanos({ promptTokens: input.promptTokens, completionTokens: input.maxCompletionTokens }, prices);
    // Limits (Redis) and budgets (PostgreSQL) are reserved at once: one round trip of latency, not two. The rare
    // request that one admits and the other refuses gives the first back; so does one where either side throws.
    type LimitOutcome = { decision: Awaited<ReturnType<RateLimiter["reserve"]>> } | { error: unknown };
    type BudgetOutcome = Awaited<ReturnType<BudgetStore["reserve"]>> | { error: unknown } | undefined;
    const tracked = headroomKey(input);
    if (tracked) headroom?.pending(tracked, estimate);
    const [limited, budget] = await Promise.all([
      deps.limiter
        .reserve({
          subject: principal.userId,
          model: model.name,
          limits: input.limits ?? UNLIMITED,
          key: principal.keyLimits ? { id: principal.keyId, limits: principal.keyLimits } : undefined,
          tokens: estimate,
        })
        .then(
          (decision): LimitOutcome => ({ decision }),
          (error: unknown): LimitOutcome => ({ error }),
        ),
      worst > 0n
        ? deps.budgets.reserve(usageId, owners, worst).then(
            (b): BudgetOutcome => b,
            (error: unknown): BudgetOutcome => ({ error }),
          )
        : Promise.resolve<BudgetOutcome>(undefined),
    ]);
    /** The budget reservation this request holds, if any: on a lease (in memory) or a row of its own. */
    const held = budget && "admitted" in budget && budget.admitted ? budget : undefined;
    if (tracked) {
      // Only an admission in full vouches for the next call: limits allowed (not degraded), the budget admitted.
      const full =
        "decision" in limited && limited.decision.outcome === "allowed" && (budget === undefined || held !== undefined);
      headroom?.decided(tracked, estimate, full ? limited.decision : null);
    }
    if ("error" in limited) {
      // A limiter that throws (an input it rejects, such as an estimate beyond 2^53) rather than answering: the
      // request still has its one record.
      giveBack(usageId, held);
      const outcome: Outcome = { ...statusOf(limited.error), promptTokens: 0, completionTokens: 0 };
      journal(deps, entryOf(input, usageId, started, now(), outcome, 0n, ZERO_CARBON));
      throw limited.error;
    }
    const { decision } = limited;
    const headers = rateLimitHeaders(decision);
    if (!decision.allowed) {
      giveBack(usageId, held);
      const r = decision.refusal;
      if (r?.reason === "unavailable") {
        throw refused(
          input,
          usageId,
          started,
          Code.Unavailable,
          "Rate limits cannot be checked right now; retry shortly.",
          "LIMITS_UNAVAILABLE",
          headers,
          decision.retryAfterSeconds ?? 1,
        );
      }
      const what = r?.limit ? LIMIT_NAMES[r.limit] : "rate limit";
      if (r?.reason === "forbidden") {
        const whose = r.scope === "key" ? "This API key's" : "Your role's";
        throw refused(
          input,
          usageId,
          started,
          Code.ResourceExhausted,
          `${whose} limit on '${model.name}' (${what}) is 0: calls with it are refused.`,
          "RATE_LIMIT_EXCEEDED",
          headers,
        );
      }
      const message =
        r?.reason === "too_large"
          ? `This request (about ${estimate} tokens with max_tokens) exceeds your ${what} on '${model.name}'; lower max_tokens or the prompt.`
          : `Rate limit reached on '${model.name}': ${what}. Retry after ${decision.retryAfterSeconds ?? 1} s.`;
      throw refused(
        input,
        usageId,
        started,
        Code.ResourceExhausted,
        message,
        "RATE_LIMIT_EXCEEDED",
        headers,
        decision.retryAfterSeconds,
      );
    }
    if (budget && "error" in budget) {
      settle(decision.reservation, 0);
      deps.logger.error({ err: budget.error }, "budget reservation failed (database unreachable?)");
      throw refused(
        input,
        usageId,
        started,
        Code.Unavailable,
        "Budgets cannot be checked right now; retry shortly.",
        "BUDGETS_UNAVAILABLE",
        headers,
        1,
      );
    }
    if (budget && !budget.admitted) {
      settle(decision.reservation, 0);
      const whose = budget.owner.kind === "organization" ? "Your organization's" : "Your";
      throw refused(
        input,
        usageId,
        started,
        Code.ResourceExhausted,
        `${whose} budget is exhausted (${nanosToUnits(budget.remainingNanos)} left, this request may cost up to ${nanosToUnits(worst)}).`,
        "INSUFFICIENT_QUOTA",
        headers,
      );
    }

    const lease = held?.lease;
    let finished: Settled | undefined;
    return {
      usageId,
      headers,
      finish(reported) {
        if (finished) return finished;
        // Counts come from upstreams and token counters: one that is not a count (10.5, -5, NaN) must not leave
        // the request unsettled. Everything that can throw is computed before the first side effect, so the
        // limiter, the budget lease and the journal each hear of the request exactly once.
        const outcome: Outcome = {
          ...reported,
          promptTokens: tokenCount(reported.promptTokens),
          completionTokens: tokenCount(reported.completionTokens),
        };
        const ended = now();
        const seconds = Math.max(0, ended - started) / 1000;
        const cost = costNanos(outcome, prices);
        const c = outcome.servedBy
          ? estimateCarbon({
              activeParamsB: outcome.servedBy.carbon.activeParamsB,
              totalParamsB: outcome.servedBy.carbon.totalParamsB,
              zone: outcome.servedBy.carbon.zone,
              completionTokens: outcome.completionTokens,
              promptTokens: outcome.promptTokens,
              latencySeconds: seconds,
            })
          : null;
        const carbon = c ? { kWh: c.kWh, kgCO2eq: c.kgCO2eq } : ZERO_CARBON;
        finished = { cost: nanosToUnits(cost), carbon };
        settle(decision.reservation, outcome.promptTokens + outcome.completionTokens);
        lease?.finish(cost);
        journal(deps, entryOf(input, usageId, started, ended, outcome, cost, carbon, lease?.ids));
        // Metrics once the turn is over: the answer does not wait for them. The journal is written before it, above:
        // the record of an answered request survives even a process killed right after the answer.
        if (deps.onFinish) setImmediate(deps.onFinish, input, outcome, seconds);
        return finished;
      },
    };
  }

  return {
    refusedBeforeAdmission(input, err) {
      const { status, errorCode } = statusOf(err);
      journal(deps, {
        ...input,
        model: recordableModelName(input.model),
        usageId: uuidv7(),
        ended: Math.max(input.started, now()),
        status,
        errorCode,
        promptTokens: 0,
        completionTokens: 0,
        cost: 0n,
        carbon: ZERO_CARBON,
      });
    },

    mayForwardEarly(input) {
      const key = headroomKey(input);
      return (
        key !== undefined &&
        open < forwardEarlyBelow &&
        headroom?.ample(key, input.promptTokens + input.maxCompletionTokens) === true
      );
    },

    needsPromptTokens(principal, model, limits) {
      if (tokenLimited(limits) || tokenLimited(principal.keyLimits)) return true;
      if (model.costPromptPerMillion <= 0 && model.costCompletionPerMillion <= 0) return false;
      return deps.budgets.mayHaveBudget(budgetOwners(principal));
    },

    async admit(input) {
      // Open calls are counted for early forwarding only: without it, the admission is admitOnce's, unwrapped.
      if (!headroom) return admitOnce(input);
      open++;
      let admission: Admission;
      try {
        admission = await admitOnce(input);
      } catch (err) {
        open--;
        throw err;
      }
      let closed = false;
      return {
        usageId: admission.usageId,
        headers: admission.headers,
        finish(outcome) {
          if (!closed) {
            closed = true;
            open--;
          }
          return admission.finish(outcome);
        },
      };
    },
  };
}

/** Whether the limiter counts anything under `l` (some limit set; 0 = forbidden is decided without counting). */
function counted(l: Limits | null | undefined): boolean {
  return (
    l != null &&
    [l.requestsPerMinute, l.requestsPerDay, l.tokensPerMinute, l.tokensPerDay].some((v) => v !== null && v > 0)
  );
}

/** The usage record's largest token count (a PostgreSQL integer). */
const MAX_RECORDED_TOKENS = 2_147_483_647;

/** A reported token count as governance counts it: a whole number from 0 to what the record holds; 0 for NaN. */
function tokenCount(n: number): number {
  return Number.isNaN(n) ? 0 : Math.min(MAX_RECORDED_TOKENS, Math.max(0, Math.trunc(n)));
}

const LIMIT_NAMES: Record<keyof Limits, string> = {
  requestsPerMinute: "requests per minute",
  requestsPerDay: "requests per day",
  tokensPerMinute: "tokens per minute",
  tokensPerDay: "tokens per day",
};

/** The journal entry of a request admitted (or refused by admission) under `input`. */
function entryOf(
  input: AdmitInput,
  usageId: string,
  started: number,
  ended: number,
  outcome: Outcome,
  cost: bigint,
  carbon: Settled["carbon"],
  budgetLeaseIds?: string[],
): JournalEntry {
  const { principal, requestId, endpoint } = input;
  return {
    usageId,
    principal,
    requestId,
    endpoint,
    model: input.model.name,
    started,
    ended,
    ...outcome,
    providerId: outcome.servedBy?.id,
    cost,
    carbon,
    budgetLeaseIds,
  };
}

export type { DecisionOutcome };
