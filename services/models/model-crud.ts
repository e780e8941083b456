import {
  type EntityManager,
  type FilterQuery,
  ForeignKeyConstraintViolationException,
  LockMode,
  UniqueConstraintViolationException,
} from "@mikro-orm/core";
import type { MikroORM } from "@mikro-orm/postgresql";
import { failedPrecondition, invalidArgument } from "../platform/errors.js";
import type { Page } from "../platform/paging.js";
import {
  type Model,
  ModelEntity,
  type ModelGrant,
  ModelGrantEntity,
  ModelNameEntity,
  ProviderEntity,
} from "./entities.js";
import {
  type GrantLimits,
  limitsOf,
  type ModelDetail,
  type ModelInput,
  type ModelPatch,
  type ModelRecord,
} from "./model-types.js";
import { createProviderStore } from "./provider-store.js";
import { guard } from "./store-guard.js";
import type { ModelTypeName } from "./validation.js";

/**
 * The model registry's administrative persistence, over MikroORM: loaded by model-store.ts on the first call that
 * needs it, never by the serving path (model resolution and listing are plain SQL there).
 */
export type ModelCrud = ReturnType<typeof createModelCrud>;

/** PostgreSQL persistence of the model registry over the ORM; every call works on its own EntityManager fork. */
export function createModelCrud(orm: MikroORM) {
  const em = (): EntityManager => orm.em.fork();

  async function aliasesOf(e: EntityManager, ids: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>(ids.map((id) => [id, []]));
    if (ids.length === 0) return out;
    const rows = await e.find(ModelNameEntity, { model: { $in: ids }, alias: true }, { orderBy: { name: "asc" } });
    for (const r of rows) out.get(r.model.id)?.push(r.name);
    return out;
  }

  function record(m: Model, aliases: string[]): ModelRecord {
    return {
      id: m.id,
      name: m.name,
      aliases,
      type: m.type as ModelTypeName,
      maxContextLength: m.maxContextLength ?? null,
      vectorSize: m.vectorSize ?? null,
      costPromptPerMillion: m.costPromptPerMillion,
      costCompletionPerMillion: m.costCompletionPerMillion,
      createdAt: m.createdAt,
      updatedAt: m.updatedAt,
    };
  }

  async function records(e: EntityManager, models: Model[]): Promise<ModelRecord[]> {
    const aliases = await aliasesOf(
      e,
      models.map((m) => m.id),
    );
    return models.map((m) => record(m, aliases.get(m.id) ?? []));
  }

  async function details(e: EntityManager, models: Model[]): Promise<ModelDetail[]> {
    const ids = models.map((m) => m.id);
    const base = await records(e, models);
    if (ids.length === 0) return [];
    const [providers, grants] = await Promise.all([
      e.find(ProviderEntity, { model: { $in: ids } }, { orderBy: { id: "asc" } }),
      e.find(ModelGrantEntity, { model: { $in: ids } }, { orderBy: { id: "asc" } }),
    ]);
    return base.map((r) => ({
      ...r,
      providers: providers.filter((p) => p.model.id === r.id),
      grantedRoleIds: grants.filter((g) => g.model.id === r.id).map((g) => g.roleId),
      grantLimits: new Map(grants.filter((g) => g.model.id === r.id).map((g) => [g.roleId, limitsOf(g)])),
    }));
  }

  /** Replaces every row of a model in the namespace table: its name, then its aliases. */
  async function writeNames(e: EntityManager, model: Model, aliases: string[]): Promise<void> {
    await e.nativeDelete(ModelNameEntity, { model: model.id });
    e.create(ModelNameEntity, { name: model.name, model, alias: false });
    for (const alias of aliases) e.create(ModelNameEntity, { name: alias, model, alias: true });
  }

  async function getModel(id: string): Promise<ModelDetail | null> {
    const e = em();
    const model = await e.findOne(ModelEntity, { id });
    return model ? ((await details(e, [model]))[0] ?? null) : null;
  }

  return {
    ...createProviderStore(orm),
    getModel,

    async createModel(input: ModelInput): Promise<ModelDetail> {
      return guard(
        () =>
          em().transactional(async (e) => {
            const model = e.create(ModelEntity, {
              name: input.name,
              type: input.type,
              maxContextLength: null,
              vectorSize: null,
              costPromptPerMillion: input.costPromptPerMillion,
              costCompletionPerMillion: input.costCompletionPerMillion,
            });
            await e.flush();
            await writeNames(e, model, input.aliases);
            await e.flush();
            return {
              ...record(model, [...input.aliases].sort()),
              providers: [],
              grantedRoleIds: [],
              grantLimits: new Map(),
            };
          }),
        { name: input.name },
      );
    },

    async listModelDetails(page: Page, filter: { name?: string }): Promise<ModelDetail[]> {
      const e = em();
      const where: FilterQuery<Model> = {};
      if (page.after) where.id = { $gt: page.after };
      if (filter.name) where.name = { $ilike: `%${filter.name.replace(/[\\%_]/g, (c) => `\\${c}`)}%` };
      return details(e, await e.find(ModelEntity, where, { orderBy: { id: "asc" }, limit: page.limit }));
    },

    /** Applies a patch; a type change is refused while the model has providers (they were probed for the old one). */
    async updateModel(id: string, patch: ModelPatch): Promise<ModelDetail | null> {
      const updated = await guard(
        () =>
          em().transactional(async (e) => {
            const model = await e.findOne(ModelEntity, { id }, { lockMode: LockMode.PESSIMISTIC_WRITE });
            if (!model) return null;
            if (patch.type !== undefined && patch.type !== model.type) {
              if ((await e.count(ProviderEntity, { model: id })) > 0) {
                throw failedPrecondition(
                  "The type of a model with providers cannot change; delete its providers first.",
                  "MODEL_HAS_PROVIDERS",
                );
              }
              model.type = patch.type;
            }
            if (patch.costPromptPerMillion !== undefined) model.costPromptPerMillion = patch.costPromptPerMillion;
            if (patch.costCompletionPerMillion !== undefined) {
              model.costCompletionPerMillion = patch.costCompletionPerMillion;
            }
            if (patch.name !== undefined || patch.aliases !== undefined) {
              const aliases = patch.aliases ?? (await aliasesOf(e, [id])).get(id) ?? [];
              if (patch.name !== undefined) model.name = patch.name;
              if (aliases.includes(model.name)) {
                throw invalidArgument(
                  `'${model.name}' cannot be both the name and an alias of this model.`,
                  patch.name === undefined ? "aliases" : "name",
                );
              }
              await e.flush();
              await writeNames(e, model, aliases);
              // The namespace rows are rewritten: touch the model so update_time tells.
              model.updatedAt = new Date();
            }
            await e.flush();
            return model.id;
          }),
        { name: patch.name },
      );
      return updated ? getModel(updated) : null;
    },

    async deleteModel(id: string): Promise<boolean> {
      return (await em().nativeDelete(ModelEntity, { id })) > 0;
    },

    /**
     * Grants a model to a role; returns the existing grant when there is one, with `limits` applied when given.
     * Null when the role does not exist.
     */
    async grant(roleId: string, modelId: string, limits?: GrantLimits): Promise<ModelGrant | null> {
      const e = em();
      const existing = await e.findOne(ModelGrantEntity, { roleId, model: modelId });
      if (existing) {
        if (limits) {
          e.assign(existing, limits);
          await e.flush();
        }
        return existing;
      }
      try {
        const grant = e.create(ModelGrantEntity, {
          roleId,
          model: e.getReference(ModelEntity, modelId),
          ...(limits ?? {}),
        });
        await e.flush();
        return grant;
      } catch (err) {
        if (err instanceof ForeignKeyConstraintViolationException) return null;
        // Granted concurrently: the other call's grant stands.
        if (err instanceof UniqueConstraintViolationException) {
          return em().findOne(ModelGrantEntity, { roleId, model: modelId });
        }
        throw err;
      }
    },

    async revoke(roleId: string, modelId: string): Promise<ModelGrant | null> {
      const e = em();
      const grant = await e.findOne(ModelGrantEntity, { roleId, model: modelId });
      if (!grant) return null;
      await e.nativeDelete(ModelGrantEntity, { id: grant.id });
      return grant;
    },
  };
}
