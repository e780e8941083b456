import { describe, expect, it } from "vitest";
import type { Principal } from "../../platform/context.js";
import {
  createLimitsView,
  createMemoryLimiter,
  createResilientLimiter,
  type Limits,
  type RateLimiter,
  type UsableModels,
} from "./index.js";
import { limits } from "./limiter.contract.js";

const principal = (over: Partial<Principal> = {}): Principal => ({
  userId: "u1",
  email: "u1@example.test",
  name: "U1",
  roleId: "role-1",
  roleName: "member",
  permissions: new Set<string>(),
  organizationId: null,
  userExpiresAt: null,
  keyId: "key-1",
  keyExpiresAt: null,
  ...over,
});

/** A registry of `count` models m000…, granted to role-1 with `grant(i)` limits; m001 cannot be used (revoked). */
function registry(count: number, grant: (i: number) => Limits | null) {
  const asked: { after?: string; roleId?: string }[] = [];
  const models: UsableModels = {
    async list(page, roleId) {
      asked.push({ after: page.after, roleId });
      const all = Array.from({ length: count }, (_, i) => ({ id: String(i).padStart(3, "0"), name: `m${i}` }));
      return all.filter((m) => page.after === undefined || m.id > page.after).slice(0, page.limit);
    },
    async limitsFor(name, p) {
      if (name === "m1") throw new Error("not granted any more");
      return p.permissions.has("admin") ? null : grant(Number(name.slice(1)));
    },
  };
  return { models, asked };
}

describe("limits view", () => {
  it("lists every usable model across pages, with the role's and the key's limits and what remains", async () => {
    const limiter = createMemoryLimiter();
    const { models, asked } = registry(205, (i) => (i === 0 ? limits({ requestsPerMinute: 10 }) : null));
    const view = createLimitsView({ limiter, models });
    const p = principal({ keyLimits: limits({ requestsPerMinute: 3, tokensPerDay: 0 }) });
    await limiter.reserve({ subject: "u1", model: "m0", limits: limits({ requestsPerMinute: 10 }), tokens: 0 });
    const all = await view(p);
    expect(all).toHaveLength(204);
    expect(asked).toEqual([
      { after: undefined, roleId: "role-1" },
      { after: "099", roleId: "role-1" },
      { after: "199", roleId: "role-1" },
    ]);
    expect(all[0]).toEqual({
      model: "m0",
      perLimit: {
        // The role has 9 left, the key (never used) 3: the key binds.
        requestsPerMinute: { limit: 3, remaining: 3, resetMs: 0, roleLimit: 10, keyLimit: 3 },
        requestsPerDay: null,
        tokensPerMinute: null,
        tokensPerDay: { limit: 0, remaining: 0, resetMs: 0, roleLimit: null, keyLimit: 0 },
      },
    });
    expect(all[1]?.model).toBe("m2");
    expect(all[1]?.perLimit.requestsPerMinute).toMatchObject({ limit: 3, roleLimit: null, keyLimit: 3 });
    // Without key limits: the role's alone, and a model without limits is listed with none.
    const plain = await view(principal());
    expect(plain[0]?.perLimit.requestsPerMinute).toEqual({
      limit: 10,
      remaining: 9,
      resetMs: expect.any(Number),
      roleLimit: 10,
      keyLimit: null,
    });
    expect(plain[1]?.perLimit).toEqual({
      requestsPerMinute: null,
      requestsPerDay: null,
      tokensPerMinute: null,
      tokensPerDay: null,
    });
    await limiter.close();
  });

  it("lists every model for an admin, without role limits", async () => {
    const { models, asked } = registry(3, () => limits({ requestsPerMinute: 1 }));
    const view = createLimitsView({ limiter: createMemoryLimiter(), models });
    const all = await view(principal({ permissions: new Set(["admin"]) }));
    expect(all.map((m) => m.model)).toEqual(["m0", "m2"]);
    expect(all[0]?.perLimit.requestsPerMinute).toBeNull();
    expect(asked[0]?.roleId).toBeUndefined();
  });

  it("still lists the limits when the store is down, with nothing known of what remains", async () => {
    const down: RateLimiter = {
      kind: "redis",
      reserve: () => Promise.reject(new Error("down")),
      settle: () => Promise.reject(new Error("down")),
      status: () => Promise.reject(new Error("down")),
      close: async () => undefined,
    };
    const limiter = createResilientLimiter({ primary: down, policy: "fail-open" });
    const { models } = registry(1, () => limits({ requestsPerMinute: 10, tokensPerDay: 500 }));
    const view = createLimitsView({ limiter, models });
    const [m0] = await view(principal({ keyLimits: limits({ requestsPerMinute: 4 }) }));
    expect(m0?.perLimit).toEqual({
      requestsPerMinute: { limit: 4, remaining: null, resetMs: null, roleLimit: 10, keyLimit: 4 },
      requestsPerDay: null,
      tokensPerMinute: null,
      tokensPerDay: { limit: 500, remaining: null, resetMs: null, roleLimit: 500, keyLimit: null },
    });
  });
});
