import { createHash } from "node:crypto";
import type {
  Decision,
  LimiterWindows,
  LimitName,
  LimitStatus,
  Limits,
  LimitsStatus,
  Refusal,
  Reservation,
  ReserveInput,
  ScopedLimitStatus,
  StatusInput,
  WindowName,
  WindowSpec,
} from "./limiter.js";

/**
 * The store-independent half of a decision, shared by the Redis and in-process limiters: validation, the static
 * refusals (0 = forbidden, an estimate larger than a limit), which counters a decision touches and their keys,
 * and turning the store's raw answer into a Decision. The stores only do the counting.
 */

/** One counter (scope × window) a decision checks, with its two limits (null: not checked). */
export interface CounterPlan {
  /** Key without the store prefix; every key of one decision carries the same hash tag. */
  key: string;
  scope: "subject" | "key";
  window: WindowName;
  windowMs: number;
  buckets: number;
  bucketMs: number;
  requests: number | null;
  tokens: number | null;
}

/**
 * The least a reservation can still be settled after it was made. A request may outlive its minute window (a long
 * stream, whose client set no max_tokens, reserved the default and generated more): its excess must still be charged
 * when it ends. A provider's timeout is one hour at most (models/validation.ts), so two hours cover any request. A
 * settled marker is deleted at once; only a reservation never settled (a crashed process) waits this long.
 */
export const SETTLE_HORIZON_MS = 2 * 3_600_000;

/** Everything a store needs to take one decision. */
export interface Plan {
  tag: string;
  tokens: number;
  counters: CounterPlan[];
  /** How long a reservation marker lives: the longest counter window plus one bucket, and SETTLE_HORIZON_MS at least. */
  markerTtlMs: number;
}

/** A store's raw answer for one decision. */
export interface RawOutcome {
  allowed: boolean;
  /** When refused: ms until the request fits, -1 when it never will. */
  retryAfterMs: number;
  /** When refused: index of the binding counter, and whether its requests (0) or tokens (1) limit binds. */
  failed: number;
  failedKind: 0 | 1;
  /** Per counter, in plan order: usage (after the reservation when allowed) and ms until it has all aged out. */
  usage: CounterUsage[];
}

/** One counter's usage over its window, and ms until all of it has aged out. */
export interface CounterUsage {
  requests: number;
  tokens: number;
  resetMs: number;
}

/** Checks the windows: positive integer lengths, each a multiple of its bucket count (1–1000 buckets). */
export function validateWindows(windows: LimiterWindows): LimiterWindows {
  for (const name of ["minute", "day"] as const) {
    const { ms, buckets } = windows[name];
    const ok = Number.isSafeInteger(ms) && ms > 0 && Number.isSafeInteger(buckets) && buckets >= 1 && buckets <= 1_000;
    if (!ok || ms % buckets !== 0) {
      throw new RangeError(`limiter: window ${name} needs an integer ms that is a multiple of buckets (1–1000)`);
    }
  }
  return windows;
}

/** The refusal a decision gets without looking at any counter (forbidden, or too large to ever fit), or null. */
export function staticRefusal(input: ReserveInput): Decision | null {
  validateInput(input);
  const scopes: ["subject" | "key", Limits][] = [["subject", input.limits]];
  if (input.key !== undefined) scopes.push(["key", input.key.limits]);
  for (const [scope, limits] of scopes) {
    for (const name of LIMIT_NAMES) {
      if (limits[name] === 0) return refused({ reason: "forbidden", limit: name, scope, value: 0 });
    }
  }
  for (const [scope, limits] of scopes) {
    for (const name of ["tokensPerMinute", "tokensPerDay"] as const) {
      const value = limits[name];
      if (value !== null && input.tokens > value) return refused({ reason: "too_large", limit: name, scope, value });
    }
  }
  return null;
}

/** The counters a decision checks. Call staticRefusal first. */
export function planDecision(input: ReserveInput, windows: LimiterWindows): Plan {
  const tag = shortHash(`${input.subject}\n${input.model}`, 16);
  const counters: CounterPlan[] = [];
  const add = (scope: "subject" | "key", base: string, limits: Limits): void => {
    for (const window of ["minute", "day"] as const) {
      const requests = window === "minute" ? limits.requestsPerMinute : limits.requestsPerDay;
      const tokens = window === "minute" ? limits.tokensPerMinute : limits.tokensPerDay;
      if (requests === null && tokens === null) continue;
      const spec: WindowSpec = windows[window];
      const key = `${base}:${window === "minute" ? "m" : "d"}`;
      const bucketMs = spec.ms / spec.buckets;
      counters.push({ key, scope, window, windowMs: spec.ms, buckets: spec.buckets, bucketMs, requests, tokens });
    }
  };
  add("subject", `{${tag}}:s`, input.limits);
  if (input.key !== undefined) add("key", `{${tag}}:k:${shortHash(input.key.id, 12)}`, input.key.limits);
  const markerTtlMs = Math.max(SETTLE_HORIZON_MS, ...counters.map((c) => c.windowMs + c.bucketMs));
  return { tag, tokens: input.tokens, counters, markerTtlMs };
}

/** Checks a status() input as reserve() checks its own (RangeError). */
export function validateStatusInput(input: StatusInput): void {
  validateInput({ ...input, tokens: 0 });
}

/** The counters a status() reads: those a decision would check. */
export function planStatus(input: StatusInput, windows: LimiterWindows): Plan {
  validateStatusInput(input);
  return planDecision({ ...input, tokens: 0 }, windows);
}

/** Turns what a store read for each counter of `plan` into a status. */
export function composeStatus(plan: Plan, usage: CounterUsage[]): LimitsStatus {
  const perLimit = emptyPerLimit();
  for (const [i, counter] of plan.counters.entries()) {
    const u = usage[i];
    if (u === undefined) continue;
    for (const kind of ["requests", "tokens"] as const) {
      const status = statusOf(counter[kind], u[kind], u.resetMs);
      if (status === null) continue;
      const name = limitName(counter.window, kind);
      const scoped: ScopedLimitStatus = { ...status, scope: counter.scope };
      if (tighter(scoped, perLimit[name])) perLimit[name] = scoped;
    }
  }
  return {
    known: true,
    requests: tightest(plan, usage, "requests"),
    tokens: tightest(plan, usage, "tokens"),
    perLimit,
  };
}

/** The status when the store cannot be read: nothing known. */
export function unknownStatus(): LimitsStatus {
  return { known: false, requests: null, tokens: null, perLimit: emptyPerLimit() };
}

function emptyPerLimit(): Record<LimitName, ScopedLimitStatus | null> {
  return { requestsPerMinute: null, requestsPerDay: null, tokensPerMinute: null, tokensPerDay: null };
}

/** The marker key of a reservation (same tag as its counters). */
export function markerKey(plan: Plan, id: string): string {
  return `{${plan.tag}}:res:${id}`;
}

/** Turns a store's answer into a Decision. `reservation` is the one the store made when allowed. */
export function composeDecision(plan: Plan, raw: RawOutcome, reservation: Reservation | null): Decision {
  const requests = tightest(plan, raw.usage, "requests");
  const tokens = tightest(plan, raw.usage, "tokens");
  if (raw.allowed) return { allowed: true, outcome: "allowed", reservation, requests, tokens };
  const counter = plan.counters[raw.failed];
  const kind = raw.failedKind === 0 ? "requests" : "tokens";
  const refusal: Refusal = { reason: raw.retryAfterMs < 0 ? "too_large" : "exhausted" };
  if (counter !== undefined) {
    refusal.limit = limitName(counter.window, kind);
    refusal.scope = counter.scope;
    refusal.value = counter[kind] ?? undefined;
  }
  const decision: Decision = { allowed: false, outcome: "refused", reservation: null, requests, tokens, refusal };
  if (raw.retryAfterMs >= 0) {
    decision.retryAfterMs = raw.retryAfterMs;
    decision.retryAfterSeconds = Math.max(1, Math.ceil(raw.retryAfterMs / 1_000));
  }
  return decision;
}

/** No limit is set on the role's grant nor on the key: a decision needs no store (planDecision plans no counter). */
export function countsNothing(input: ReserveInput): boolean {
  const none = (l: Limits) =>
    l.requestsPerMinute === null && l.requestsPerDay === null && l.tokensPerMinute === null && l.tokensPerDay === null;
  return none(input.limits) && (input.key === undefined || none(input.key.limits));
}

/** A decision with nothing to count: allowed, no reservation, no headers. */
export function unlimitedDecision(): Decision {
  return { allowed: true, outcome: "allowed", reservation: null, requests: null, tokens: null };
}

/** Checks settle()'s token count. */
export function validateActualTokens(actualTokens: number): void {
  if (!Number.isSafeInteger(actualTokens) || actualTokens < 0) {
    throw new RangeError(`limiter: actualTokens must be an integer >= 0, got ${actualTokens}`);
  }
}

const LIMIT_NAMES: readonly LimitName[] = ["requestsPerMinute", "requestsPerDay", "tokensPerMinute", "tokensPerDay"];

function limitName(window: WindowName, kind: "requests" | "tokens"): LimitName {
  if (kind === "requests") return window === "minute" ? "requestsPerMinute" : "requestsPerDay";
  return window === "minute" ? "tokensPerMinute" : "tokensPerDay";
}

/** Where a limit stands given what its counter holds; null when the limit is not set. */
function statusOf(limit: number | null, used: number, resetMs: number): LimitStatus | null {
  if (limit === null) return null;
  return { limit, remaining: Math.max(0, limit - used), resetMs: used > 0 ? resetMs : 0 };
}

/** Whether `a` binds before `b`: less remaining, or as much and a smaller limit. */
function tighter(a: LimitStatus, b: LimitStatus | null): boolean {
  return b === null || a.remaining < b.remaining || (a.remaining === b.remaining && a.limit < b.limit);
}

/** The limit of this kind with the least remaining (ties: the smaller limit). */
function tightest(plan: Plan, usage: CounterUsage[], kind: "requests" | "tokens"): LimitStatus | null {
  let best: LimitStatus | null = null;
  for (const [i, counter] of plan.counters.entries()) {
    const u = usage[i];
    const status = u === undefined ? null : statusOf(counter[kind], u[kind], u.resetMs);
    if (status !== null && tighter(status, best)) best = status;
  }
  return best;
}

function refused(refusal: Refusal): Decision {
  return { allowed: false, outcome: "refused", reservation: null, requests: null, tokens: null, refusal };
}

function validateInput(input: ReserveInput): void {
  if (!input.subject || !input.model) throw new RangeError("limiter: subject and model are required");
  if (!Number.isSafeInteger(input.tokens) || input.tokens < 0) {
    throw new RangeError(`limiter: tokens must be an integer >= 0, got ${input.tokens}`);
  }
  const all = input.key === undefined ? [input.limits] : [input.limits, input.key.limits];
  for (const limits of all) {
    for (const name of LIMIT_NAMES) {
      const v = limits[name];
      if (v !== null && (!Number.isSafeInteger(v) || v < 0)) {
        throw new RangeError(`limiter: ${name} must be null or an integer >= 0, got ${v}`);
      }
    }
  }
  if (input.key !== undefined && !input.key.id) throw new RangeError("limiter: key.id is required");
}

function shortHash(text: string, length: number): string {
  return createHash("sha1").update(text).digest("base64url").slice(0, length);
}
