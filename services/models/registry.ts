import { Code } from "@connectrpc/connect";
import { LRUCache } from "lru-cache";
import type { Logger } from "pino";
import type { Principal } from "../platform/context.js";
import { rpcError } from "../platform/errors.js";
import { keepWarm } from "../platform/keep-warm.js";
import type { KvStore } from "../platform/kv/kv.js";
import { PRECISE_TTL } from "../platform/ttl-cache.js";
import { type GrantLimits, isForbidden, type ModelDetail, type ModelStore } from "./model-store.js";
import { isAdmin, isModelName, type ModelTypeName, type ProviderTypeName } from "./validation.js";

/** One upstream of a resolved model, with its key: for the inference path only, never for an API response. */
export interface ResolvedProvider {
  readonly id: string;
  readonly type: ProviderTypeName;
  /** Base URL without `/v1` and without a trailing slash. */
  readonly url: string;
  /** The upstream's API key, or null. A secret: never log it, never return it. */
  readonly key: string | null;
  /** The name to send upstream as `model`. */
  readonly upstreamModel: string;
  readonly timeoutSeconds: number;
  readonly weight: number;
  /** 0 = no limit. */
  readonly maxConcurrency: number;
  readonly carbon: { readonly zone: string; readonly totalParamsB: number; readonly activeParamsB: number };
}

/** A model as the inference path needs it. Shared between callers: frozen. */
export interface ResolvedModel {
  readonly id: string;
  /** The model's public name (a caller may have used an alias; echo what the caller asked for). */
  readonly name: string;
  readonly aliases: readonly string[];
  readonly type: ModelTypeName;
  /** null = unknown. */
  readonly maxContextLength: number | null;
  /** null = not an embeddings model, or unknown. */
  readonly vectorSize: number | null;
  readonly costPromptPerMillion: number;
  readonly costCompletionPerMillion: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  /** Possibly empty (a model registered before its providers). */
  readonly providers: readonly ResolvedProvider[];
}

/** What other domains (inference, embeddings) use of the registry. */
export interface ModelRegistry {
  /**
   * The model named `nameOrAlias` (case-sensitive) if the principal may use it: its role was granted the model, or
   * it has the `admin` permission (which covers every model). NotFound otherwise, the same for "unknown" and "not
   * granted", so that a caller cannot probe for models it may not use.
   */
  resolve(nameOrAlias: string, principal: Principal): Promise<ResolvedModel>;
  /**
   * For a call to the model: `resolve`, plus the caller's limits on it (null = unlimited: the `admin` permission, or
   * a grant without limits). PermissionDenied when the grant forbids the model (a limit of 0).
   */
  resolveForUse(
    nameOrAlias: string,
    principal: Principal,
  ): Promise<{ model: ResolvedModel; limits: GrantLimits | null }>;
  /** The id of every provider of every model, read from the database (not cached: an admin view's). */
  providerIds(): Promise<string[]>;
  /** Drops every cached resolution in every process; called after each registry write. */
  invalidateAll(): Promise<void>;
  close(): Promise<void>;
}

const CHANNEL = "passerelle:models:invalidate";

type Entry = { model: ResolvedModel; roles: ReadonlyMap<string, GrantLimits | null> } | null;

const unlimited = (l: GrantLimits): boolean =>
  l.requestsPerMinute === null && l.requestsPerDay === null && l.tokensPerMinute === null && l.tokensPerDay === null;

export function modelNotFound(name: string) {
  return rpcError(
    Code.NotFound,
    `The model '${name}' does not exist or you do not have access to it.`,
    "MODEL_NOT_FOUND",
  );
}

function resolved(d: ModelDetail): ResolvedModel {
  return Object.freeze({
    id: d.id,
    name: d.name,
    aliases: Object.freeze([...d.aliases]),
    type: d.type,
    maxContextLength: d.maxContextLength,
    vectorSize: d.vectorSize,
    costPromptPerMillion: d.costPromptPerMillion,
    costCompletionPerMillion: d.costCompletionPerMillion,
    createdAt: d.createdAt,
    updatedAt: d.updatedAt,
    providers: Object.freeze(
      d.providers.map((p) =>
        Object.freeze({
          id: p.id,
          type: p.type as ProviderTypeName,
          url: p.url,
          key: p.apiKey ?? null,
          upstreamModel: p.upstreamModel,
          timeoutSeconds: p.timeoutSeconds,
          weight: p.weight,
          maxConcurrency: p.maxConcurrency,
          carbon: Object.freeze({
            zone: p.carbonZone,
            totalParamsB: p.carbonTotalParamsB,
            activeParamsB: p.carbonActiveParamsB,
          }),
        }),
      ),
    ),
  });
}

/**
 * Model resolution with a per-process cache in front of the database. Every registry write clears it here and, via
 * the KV store's pub/sub, in every other process (as the authenticator does for keys); a dropped subscription also
 * clears it, and entries expire after `ttlMs` anyway, which bounds staleness if a broadcast is ever lost.
 */
export async function createModelRegistry(deps: {
  store: ModelStore;
  kv: KvStore;
  logger: Logger;
  ttlMs?: number;
  maxEntries?: number;
  /** How long a model in use stays loaded ahead of its expiry after its last use (platform/keep-warm.ts); 0: off. */
  keepWarmMs?: number;
}): Promise<ModelRegistry> {
  const ttl = Math.max(deps.ttlMs ?? 60_000, 1);
  const cache = new LRUCache<string, { entry: Entry }>({ ...PRECISE_TTL, max: deps.maxEntries ?? 10_000, ttl });
  const inflight = new Map<string, Promise<Entry>>();
  // Bumped on every invalidation, so that a load started before a write cannot cache what it read.
  let generation = 0;

  // Another process changed a model (or the subscription dropped): forget what is cached, and the loads in flight,
  // which may have read before that change (later callers must not join them).
  const forgetAll = () => {
    generation++;
    cache.clear();
    inflight.clear();
  };
  const unsubscribe = await deps.kv.subscribe(CHANNEL, forgetAll, forgetAll);

  const warm = keepWarm<string>({
    ttlMs: ttl,
    keepMs: deps.keepWarmMs ?? 0,
    max: 1_000,
    remainingMs: (name) => cache.getRemainingTTL(name),
    reload: (name) => load(name),
    onError: (err) => deps.logger.debug({ err }, "could not reload a cached model ahead of its expiry"),
  });

  function load(name: string): Promise<Entry> {
    const pending = inflight.get(name);
    if (pending) return pending;
    const started = generation;
    const p: Promise<Entry> = deps.store
      .findByName(name)
      .then((d): Entry => {
        const entry = d
          ? {
              model: resolved(d),
              roles: new Map(
                d.grantedRoleIds.map((r) => {
                  const l = d.grantLimits.get(r);
                  return [r, l && !unlimited(l) ? Object.freeze(l) : null] as const;
                }),
              ),
            }
          : null;
        if (started === generation) cache.set(name, { entry }, entry ? undefined : { ttl: Math.min(ttl, 5_000) });
        return entry;
      })
      .finally(() => {
        // An invalidation may have replaced this load with a newer one; leave that one in place.
        if (inflight.get(name) === p) inflight.delete(name);
      });
    inflight.set(name, p);
    return p;
  }

  async function lookup(nameOrAlias: string, principal: Principal) {
    if (!isModelName(nameOrAlias)) throw modelNotFound(nameOrAlias);
    const entry = cache.get(nameOrAlias)?.entry ?? (cache.has(nameOrAlias) ? null : await load(nameOrAlias));
    if (!entry) throw modelNotFound(nameOrAlias);
    warm.used(nameOrAlias);
    if (isAdmin(principal)) return { model: entry.model, limits: null };
    const limits = entry.roles.get(principal.roleId);
    if (limits === undefined) throw modelNotFound(nameOrAlias);
    return { model: entry.model, limits };
  }

  return {
    async resolve(nameOrAlias, principal) {
      const r = await lookup(nameOrAlias, principal);
      // A forbidden model is hidden, as if not granted.
      if (isForbidden(r.limits)) throw modelNotFound(nameOrAlias);
      return r.model;
    },
    async resolveForUse(nameOrAlias, principal) {
      const r = await lookup(nameOrAlias, principal);
      if (isForbidden(r.limits)) {
        throw rpcError(Code.PermissionDenied, `Your role may not use the model '${nameOrAlias}'.`, "MODEL_FORBIDDEN");
      }
      return r;
    },
    providerIds: () => deps.store.providerIds(),
    async invalidateAll() {
      forgetAll();
      try {
        await deps.kv.publish(CHANNEL, "*");
      } catch (err) {
        // The write is committed: other processes catch up within the cache TTL.
        deps.logger.error({ err }, "could not broadcast a model registry invalidation");
      }
    },
    async close() {
      warm.close();
      await unsubscribe();
    },
  };
}
