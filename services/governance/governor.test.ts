import { randomUUID } from "node:crypto";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Principal } from "../platform/context.js";
import { permissionDenied } from "../platform/errors.js";
import type { BudgetStore } from "./budget-store.js";
import type { UsageRecord } from "./entities.js";
import { type AdmitInput, createGovernor } from "./governor.js";
import { NO_MODEL } from "./journal.js";
import type { RateLimiter } from "./limiter/limiter.js";
import { createMemoryLimiter } from "./limiter/memory-limiter.js";
import { createResilientLimiter } from "./limiter/resilient-limiter.js";
import type { UsageBuffer } from "./usage-buffer.js";
import { validateUsageRecord } from "./usage-line.js";

const principal: Principal = {
  userId: randomUUID(),
  email: "a@b.c",
  name: "A",
  roleId: randomUUID(),
  roleName: "user",
  permissions: new Set(),
  organizationId: null,
  userExpiresAt: null,
  keyId: randomUUID(),
  keyExpiresAt: null,
};

const limits = { requestsPerMinute: 100, requestsPerDay: null, tokensPerMinute: 10_000, tokensPerDay: null };

const input = (over: Partial<AdmitInput> = {}): AdmitInput => ({
  principal,
  requestId: "r1",
  endpoint: "chat.completions",
  model: { name: "m", costPromptPerMillion: 1, costCompletionPerMillion: 2 },
  limits,
  promptTokens: 10,
  maxCompletionTokens: 100,
  ...over,
});

/**
 * A governor over a real limiter (resilient over memory, as in production) and budgets faked in memory: on a lease
 * (`withLease`) or on a row of their own, released through `release`.
 */
function setup(
  opts: { limiter?: RateLimiter; withLease?: boolean; forwardEarly?: boolean; forwardEarlyBelow?: number } = {},
) {
  const records: UsageRecord[] = [];
  const buffer: UsageBuffer = {
    record(r) {
      validateUsageRecord(r);
      records.push(r);
    },
    flush: async () => true,
    depth: () => 0,
    stats: () => ({ depth: 0, flushed: 0, flushFailures: 0, rejected: 0 }),
    close: async () => {},
  };
  const budget = { inflight: 0n, finished: [] as bigint[], released: [] as string[], exhausted: false };
  const budgets = {
    mayHaveBudget: () => true,
    reserve: async (usageId: string, owners: unknown[], worst: bigint) => {
      if (budget.exhausted) return { admitted: false, owner: { kind: "user", id: "u" }, remainingNanos: 0n };
      budget.inflight += worst;
      if (opts.withLease === false) return { admitted: true, owners };
      return {
        admitted: true,
        owners,
        lease: {
          ids: [randomUUID()],
          finish: (cost: bigint) => {
            budget.finished.push(cost);
            budget.inflight -= worst;
          },
        },
        usageId,
      };
    },
    release: async (usageId: string) => {
      budget.released.push(usageId);
      budget.inflight = 0n;
    },
  } as unknown as BudgetStore;
  const logs: { level: number; msg: string }[] = [];
  const logger = pino({ level: "warn" }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const limiter = opts.limiter ?? createResilientLimiter({ primary: createMemoryLimiter(), policy: "fail-closed" });
  const governor = createGovernor({
    limiter,
    budgets,
    buffer,
    logger,
    forwardEarly: opts.forwardEarly,
    forwardEarlyBelow: opts.forwardEarlyBelow,
  });
  return { governor, records, budget, logs, limiter };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 20));

// Node 20 ends the process on an unhandled rejection: a settle left rejecting in the background is a crash.
const unhandled: unknown[] = [];
const onUnhandled = (err: unknown) => void unhandled.push(err);
beforeEach(() => {
  unhandled.length = 0;
  process.on("unhandledRejection", onUnhandled);
});
afterEach(() => void process.off("unhandledRejection", onUnhandled));

describe("governor finish with token counts that are not counts", () => {
  it.each([
    [10.5, 20, 10, 20],
    [-5, 1, 0, 1],
    [Number.NaN, 3, 0, 3],
    [7, 2 ** 40, 7, 2_147_483_647],
  ])("prompt %s, completion %s: settles, finishes the lease and journals %s + %s once", async (p, c, wantP, wantC) => {
    const { governor, records, budget } = setup();
    const admission = await governor.admit(input());
    expect(budget.inflight).toBeGreaterThan(0n);
    const settled = admission.finish({ status: 200, promptTokens: p, completionTokens: c });
    // The streaming path's finally may finish again: same answer, nothing counted twice.
    expect(admission.finish({ status: 500, promptTokens: p, completionTokens: c })).toBe(settled);
    await tick();
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ status: 200, promptTokens: wantP, completionTokens: wantC });
    expect(budget.finished).toEqual([records[0]?.costNanos]);
    expect(budget.inflight).toBe(0n);
    expect(unhandled).toEqual([]);
  });

  it("settles the limiter with the clamped count", async () => {
    const { governor, limiter } = setup();
    const admission = await governor.admit(input({ promptTokens: 10, maxCompletionTokens: 100 }));
    admission.finish({ status: 200, promptTokens: 10.5, completionTokens: 20.9 });
    await tick();
    const status = await limiter.status({ subject: principal.userId, model: "m", limits });
    expect(status.tokens?.remaining).toBe(10_000 - 30);
  });

  it("logs a limiter settle that rejects, and still journals and finishes the lease", async () => {
    const base = createMemoryLimiter();
    const limiter: RateLimiter = { ...base, settle: () => Promise.reject(new Error("store gone")) };
    const { governor, records, budget, logs } = setup({ limiter });
    const admission = await governor.admit(input());
    admission.finish({ status: 200, promptTokens: 3, completionTokens: 4 });
    await tick();
    expect(unhandled).toEqual([]);
    expect(logs).toEqual([expect.objectContaining({ level: 40, msg: "rate-limit settlement failed" })]);
    expect(records).toHaveLength(1);
    expect(budget.inflight).toBe(0n);
  });
});

describe("governor admit when the limiter throws", () => {
  /** A limiter that rejects reserve as the real ones do for an estimate beyond 2^53 (plan.ts validateInput). */
  const throwing = (): RateLimiter => ({
    ...createMemoryLimiter(),
    reserve: () => Promise.reject(new RangeError("limiter: tokens must be a safe integer")),
  });

  it("gives the budget lease back, journals the request's one record (500, no tokens, no cost) and rethrows", async () => {
    const { governor, budget, records } = setup({ limiter: throwing() });
    await expect(governor.admit(input())).rejects.toThrow(RangeError);
    expect(budget.finished).toEqual([0n]);
    expect(budget.inflight).toBe(0n);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ status: 500, promptTokens: 0, completionTokens: 0, costNanos: 0n });
  });

  it("releases a budget reservation held on a row of its own", async () => {
    const { governor, budget } = setup({ limiter: throwing(), withLease: false });
    await expect(governor.admit(input())).rejects.toThrow(RangeError);
    expect(budget.released).toHaveLength(1);
  });

  it("with an estimate beyond 2^53 from the real limiter", async () => {
    const { governor, budget } = setup();
    const huge = input({ limits: null, maxCompletionTokens: 4_294_967_295 * 4_294_967_295 });
    await expect(governor.admit({ ...huge, model: { ...huge.model, costPromptPerMillion: 1e-6 } })).rejects.toThrow(
      RangeError,
    );
    expect(budget.finished).toEqual([0n]);
    expect(budget.inflight).toBe(0n);
  });
});

describe("governor needsPromptTokens", () => {
  const free = { name: "f", costPromptPerMillion: 0, costCompletionPerMillion: 0 };
  const tpm = { requestsPerMinute: null, requestsPerDay: null, tokensPerMinute: 50, tokensPerDay: null };
  const rpm = { ...tpm, requestsPerMinute: 5, tokensPerMinute: null };

  it("asks for the count when a token limit applies, the role's or the key's, even on a free model", () => {
    const { governor } = setup();
    expect(governor.needsPromptTokens(principal, free, tpm)).toBe(true);
    expect(governor.needsPromptTokens({ ...principal, keyLimits: tpm }, free, null)).toBe(true);
    expect(governor.needsPromptTokens({ ...principal, keyLimits: rpm }, free, rpm)).toBe(false);
  });

  it("on a priced model, when the caller may have a budget", () => {
    const { governor } = setup();
    expect(governor.needsPromptTokens(principal, input().model, null)).toBe(true);
  });
});

describe("a request refused before admission", () => {
  const refusal = (model: string) => ({
    principal,
    requestId: "req-r",
    endpoint: "chat.completions",
    model,
    started: Date.now(),
  });

  it("is journaled once: its status, no tokens, no cost, the model as asked", () => {
    const { governor, records, logs } = setup();
    governor.refusedBeforeAdmission(refusal("my-model"), permissionDenied("No.", "MODEL_FORBIDDEN"));
    expect(records, JSON.stringify(logs)).toHaveLength(1);
    expect(records[0]).toMatchObject({
      requestId: "req-r",
      model: "my-model",
      endpoint: "chat.completions",
      status: 403,
      promptTokens: 0,
      completionTokens: 0,
      costNanos: 0n,
      providerId: null,
    });
  });

  it("names a model the ledger can hold: none, control characters, too long", () => {
    const { governor, records } = setup();
    for (const name of ["", "\u0000\u0001", `a\u0000b${"c".repeat(300)}`]) {
      governor.refusedBeforeAdmission(refusal(name), new Error("x"));
    }
    // validateUsageRecord (the buffer's own check) accepted all three.
    expect(records.map((r) => r.model)).toEqual([NO_MODEL, NO_MODEL, `ab${"c".repeat(198)}`]);
    expect(records.map((r) => r.status)).toEqual([500, 500, 500]);
  });
});

describe("governor mayForwardEarly", () => {
  it("is off unless asked for", async () => {
    const { governor } = setup();
    (await governor.admit(input())).finish({ status: 200, promptTokens: 1, completionTokens: 1 });
    expect(governor.mayForwardEarly(input())).toBe(false);
  });

  it("vouches once an admission in full left room, for the same caller and model only", async () => {
    const { governor } = setup({ forwardEarly: true });
    expect(governor.mayForwardEarly(input())).toBe(false);
    const first = await governor.admit(input());
    expect(governor.mayForwardEarly(input())).toBe(true);
    expect(governor.mayForwardEarly(input({ model: { ...input().model, name: "other" } }))).toBe(false);
    expect(governor.mayForwardEarly(input({ principal: { ...principal, userId: randomUUID() } }))).toBe(false);
    // 10,000 tokens a minute, 110 reserved, 1,000 kept: a call of 8,790 fits, one of 8,910 does not.
    expect(governor.mayForwardEarly(input({ maxCompletionTokens: 8_780 }))).toBe(true);
    expect(governor.mayForwardEarly(input({ maxCompletionTokens: 8_900 }))).toBe(false);
    first.finish({ status: 200, promptTokens: 1, completionTokens: 1 });
  });

  it("does not vouch while the process is busy: as many calls open as forwardEarlyBelow, refusals and finishes closing them", async () => {
    const { governor, budget } = setup({ forwardEarly: true, forwardEarlyBelow: 3 });
    const open = [await governor.admit(input()), await governor.admit(input())];
    expect(governor.mayForwardEarly(input())).toBe(true);
    open.push(await governor.admit(input()));
    expect(governor.mayForwardEarly(input())).toBe(false);
    // Finished twice, closed once.
    open[0]?.finish({ status: 200, promptTokens: 1, completionTokens: 1 });
    open[0]?.finish({ status: 200, promptTokens: 1, completionTokens: 1 });
    expect(governor.mayForwardEarly(input())).toBe(true);
    open.push(await governor.admit(input()));
    expect(governor.mayForwardEarly(input())).toBe(false);
    open[1]?.finish({ status: 200, promptTokens: 1, completionTokens: 1 });
    // A refusal closes its call too (and forgets the caller until an admission in full).
    budget.exhausted = true;
    await expect(governor.admit(input())).rejects.toThrow(/budget/);
    budget.exhausted = false;
    await governor.admit(input()).then((a) => a.finish({ status: 200, promptTokens: 1, completionTokens: 1 }));
    expect(governor.mayForwardEarly(input())).toBe(true);
  });

  it("never vouches for a call that no limit counts (no round trip to overlap)", async () => {
    const { governor } = setup({ forwardEarly: true });
    await governor.admit(input({ limits: null }));
    expect(governor.mayForwardEarly(input({ limits: null }))).toBe(false);
  });

  it("forgets the caller on a refusal by the limits, then vouches again after an admission", async () => {
    const { governor } = setup({ forwardEarly: true });
    await governor.admit(input());
    expect(governor.mayForwardEarly(input())).toBe(true);
    await expect(governor.admit(input({ maxCompletionTokens: 20_000 }))).rejects.toThrow(/exceeds/);
    expect(governor.mayForwardEarly(input())).toBe(false);
    await governor.admit(input());
    expect(governor.mayForwardEarly(input())).toBe(true);
  });

  it("forgets the caller when its budget refuses, though the limits admitted", async () => {
    const { governor, budget } = setup({ forwardEarly: true });
    await governor.admit(input());
    budget.exhausted = true;
    await expect(governor.admit(input())).rejects.toThrow(/budget is exhausted/);
    expect(governor.mayForwardEarly(input())).toBe(false);
  });

  it("does not vouch after a degraded decision (the limits store down, fail-open)", async () => {
    const down: RateLimiter = {
      ...createMemoryLimiter(),
      reserve: async () => {
        throw new Error("store down");
      },
    };
    const { governor } = setup({
      forwardEarly: true,
      limiter: createResilientLimiter({ primary: down, policy: "fail-open" }),
    });
    await governor.admit(input());
    expect(governor.mayForwardEarly(input())).toBe(false);
  });

  it("tracks a key with its own limits apart from the user's other keys", async () => {
    const { governor } = setup({ forwardEarly: true });
    const keyed = { ...principal, keyId: randomUUID(), keyLimits: limits };
    await governor.admit(input({ principal: keyed }));
    expect(governor.mayForwardEarly(input({ principal: keyed }))).toBe(true);
    expect(governor.mayForwardEarly(input({ principal: { ...keyed, keyId: randomUUID() } }))).toBe(false);
  });
});
