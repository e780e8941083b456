import { type EntityManager, type FilterQuery, LockMode } from "@mikro-orm/core";
import type { MikroORM } from "@mikro-orm/postgresql";
import { failedPrecondition } from "../platform/errors.js";
import type { Page } from "../platform/paging.js";
import { type Model, ModelEntity, type Provider, ProviderEntity } from "./entities.js";
import { guard } from "./store-guard.js";
import type { Carbon, ProviderTypeName } from "./validation.js";

export interface ProviderInput {
  type: ProviderTypeName;
  url: string;
  apiKey: string | null;
  upstreamModel: string;
  timeoutSeconds: number;
  weight: number;
  maxConcurrency: number;
  carbon: Carbon;
}

/** What a probe of the upstream learned; null = the upstream did not say. */
export interface Learned {
  maxContextLength: number | null;
  vectorSize: number | null;
}

/** Checks a probe's findings against the model's (locked) values and adopts them when the model had none. */
function reconcile(model: Model, learned: Learned, othersExist: boolean): void {
  const check = (what: string, ours: number | null | undefined, theirs: number | null) => {
    if (othersExist && ours != null && theirs != null && ours !== theirs) {
      throw failedPrecondition(
        `This provider is inconsistent with the other providers of model '${model.name}': its ${what} is ` +
          `${theirs}, theirs is ${ours}.`,
        "PROVIDER_INCONSISTENT",
      );
    }
  };
  check("max context length", model.maxContextLength, learned.maxContextLength);
  check("vector size", model.vectorSize, learned.vectorSize);
  if (!othersExist) {
    model.maxContextLength = learned.maxContextLength;
    model.vectorSize = learned.vectorSize;
  } else {
    model.maxContextLength ??= learned.maxContextLength;
    model.vectorSize ??= learned.vectorSize;
  }
}

/** PostgreSQL persistence of providers (part of the model store); every call works on its own EntityManager fork. */
export function createProviderStore(orm: MikroORM) {
  const em = (): EntityManager => orm.em.fork();

  return {
    async getProvider(id: string): Promise<Provider | null> {
      return em().findOne(ProviderEntity, { id }, { populate: ["model"] });
    },

    async listProviders(page: Page, filter: { modelId?: string }): Promise<Provider[]> {
      const where: FilterQuery<Provider> = {};
      if (page.after) where.id = { $gt: page.after };
      if (filter.modelId) where.model = filter.modelId;
      return em().find(ProviderEntity, where, { orderBy: { id: "asc" }, limit: page.limit });
    },

    /**
     * Adds a provider, atomically with the consistency check: the model row is locked, the probe's findings are
     * compared with what its other providers established, and adopted when it has none. Null when the model is gone.
     */
    async createProvider(modelId: string, input: ProviderInput, learned: Learned): Promise<Provider | null> {
      return guard(() =>
        em().transactional(async (e) => {
          const model = await e.findOne(ModelEntity, { id: modelId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
          if (!model) return null;
          reconcile(model, learned, (await e.count(ProviderEntity, { model: modelId })) > 0);
          const provider = e.create(ProviderEntity, {
            model,
            type: input.type,
            url: input.url,
            apiKey: input.apiKey,
            upstreamModel: input.upstreamModel,
            timeoutSeconds: input.timeoutSeconds,
            weight: input.weight,
            maxConcurrency: input.maxConcurrency,
            carbonZone: input.carbon.zone,
            carbonTotalParamsB: input.carbon.totalParamsB,
            carbonActiveParamsB: input.carbon.activeParamsB,
          });
          await e.flush();
          return provider;
        }),
      );
    },

    /** Updates a provider; with `learned` (a fresh probe) the model's values are checked as on creation. */
    async updateProvider(id: string, patch: Partial<ProviderInput>, learned?: Learned): Promise<Provider | null> {
      return guard(() =>
        em().transactional(async (e) => {
          const current = await e.findOne(ProviderEntity, { id });
          if (!current) return null;
          if (learned) {
            const model = await e.findOne(
              ModelEntity,
              { id: current.model.id },
              { lockMode: LockMode.PESSIMISTIC_WRITE },
            );
            if (!model) return null;
            const others = await e.count(ProviderEntity, { model: model.id, id: { $ne: id } });
            reconcile(model, learned, others > 0);
          }
          if (patch.type !== undefined) current.type = patch.type;
          if (patch.url !== undefined) current.url = patch.url;
          if (patch.apiKey !== undefined) current.apiKey = patch.apiKey;
          if (patch.upstreamModel !== undefined) current.upstreamModel = patch.upstreamModel;
          if (patch.timeoutSeconds !== undefined) current.timeoutSeconds = patch.timeoutSeconds;
          if (patch.weight !== undefined) current.weight = patch.weight;
          if (patch.maxConcurrency !== undefined) current.maxConcurrency = patch.maxConcurrency;
          if (patch.carbon !== undefined) {
            current.carbonZone = patch.carbon.zone;
            current.carbonTotalParamsB = patch.carbon.totalParamsB;
            current.carbonActiveParamsB = patch.carbon.activeParamsB;
          }
          await e.flush();
          return current;
        }),
      );
    },

    /** Deletes a provider; when it was the model's last, the model forgets what providers had taught it. */
    async deleteProvider(id: string): Promise<boolean> {
      return em().transactional(async (e) => {
        const provider = await e.findOne(ProviderEntity, { id });
        if (!provider) return false;
        const model = await e.findOne(ModelEntity, { id: provider.model.id }, { lockMode: LockMode.PESSIMISTIC_WRITE });
        await e.nativeDelete(ProviderEntity, { id });
        if (model && (await e.count(ProviderEntity, { model: model.id })) === 0) {
          model.maxContextLength = null;
          model.vectorSize = null;
        }
        await e.flush();
        return true;
      });
    },
  };
}
