import type { Principal } from "../../platform/context.js";
import { type LimitName, type Limits, type RateLimiter, type ScopedLimitStatus, UNLIMITED } from "./limiter.js";

/**
 * What GET /v1/me shows of a caller's rate limits: for every model they may use, each limit as calls with their
 * current key are checked (the role's, counted for the user, beside the key's own, counted for the key) and what
 * remains of it, read with RateLimiter.status() (nothing is counted). The accounts domain receives this as a port
 * (services/core.ts wires it), so it never reaches into governance or the model registry.
 */

/** Where one limit stands: the binding one of the role's and the key's. */
export interface LimitView {
  limit: number;
  /** null: the limits store could not be read. */
  remaining: number | null;
  resetMs: number | null;
  roleLimit: number | null;
  keyLimit: number | null;
}

/** A model's limits for the caller; a limit is null when neither the role nor the key sets it. */
export interface ModelLimitsView {
  model: string;
  perLimit: Record<LimitName, LimitView | null>;
}

/** What the view needs of the model registry (structural: services/core.ts adapts the models domain). */
export interface UsableModels {
  /**
   * A page of models in id order, those granted to `roleId` (and not forbidden by a limit of 0) or, for undefined,
   * every model.
   */
  list(page: { after?: string; limit: number }, roleId: string | undefined): Promise<{ id: string; name: string }[]>;
  /** The principal's limits on the model (null = unlimited); throws when they may not use it (skipped). */
  limitsFor(model: string, principal: Principal): Promise<Limits | null>;
}

const PAGE = 100;
const NAMES: readonly LimitName[] = ["requestsPerMinute", "requestsPerDay", "tokensPerMinute", "tokensPerDay"];

const anySet = (l: Limits | null | undefined): l is Limits => !!l && NAMES.some((n) => l[n] !== null);

/**
 * Builds the view. An `admin` caller may use every model, without role limits (their key's own limits still
 * apply). When the limits store is down, every limit is still listed, with `remaining` and `resetMs` null.
 */
export function createLimitsView(deps: {
  limiter: RateLimiter;
  models: UsableModels;
}): (principal: Principal) => Promise<ModelLimitsView[]> {
  async function usable(principal: Principal): Promise<{ name: string; limits: Limits | null }[]> {
    const roleId = principal.permissions.has("admin") ? undefined : principal.roleId;
    const out: { name: string; limits: Limits | null }[] = [];
    for (let after: string | undefined; ; ) {
      const page = await deps.models.list({ after, limit: PAGE }, roleId);
      const limits = await Promise.all(
        page.map((m) =>
          deps.models.limitsFor(m.name, principal).then(
            (l) => ({ name: m.name, limits: l }),
            () => null, // revoked or forbidden since the list was read
          ),
        ),
      );
      for (const l of limits) if (l !== null) out.push(l);
      if (page.length < PAGE) return out;
      after = page[page.length - 1]?.id;
    }
  }

  return async (principal) => {
    const keyLimits = anySet(principal.keyLimits) ? principal.keyLimits : null;
    const models = await usable(principal);
    return Promise.all(
      models.map(async ({ name, limits }) => {
        const role = anySet(limits) ? limits : null;
        const perLimit: Record<LimitName, LimitView | null> = {
          requestsPerMinute: null,
          requestsPerDay: null,
          tokensPerMinute: null,
          tokensPerDay: null,
        };
        const view: ModelLimitsView = { model: name, perLimit };
        if (role === null && keyLimits === null) return view;
        const status = await deps.limiter.status({
          subject: principal.userId,
          model: name,
          limits: role ?? UNLIMITED,
          key: keyLimits ? { id: principal.keyId, limits: keyLimits } : undefined,
        });
        for (const n of NAMES) {
          view.perLimit[n] = limitView(
            status.known ? status.perLimit[n] : null,
            role?.[n] ?? null,
            keyLimits?.[n] ?? null,
          );
        }
        return view;
      }),
    );
  };
}

/** One limit's view: from the store's status when known, else the smaller of the two limits with nothing known. */
function limitView(s: ScopedLimitStatus | null, roleLimit: number | null, keyLimit: number | null): LimitView | null {
  if (s !== null) return { limit: s.limit, remaining: s.remaining, resetMs: s.resetMs, roleLimit, keyLimit };
  const set = [roleLimit, keyLimit].filter((v): v is number => v !== null);
  if (set.length === 0) return null;
  return { limit: Math.min(...set), remaining: null, resetMs: null, roleLimit, keyLimit };
}
