import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  CreateProviderResponseSchema,
  DeleteProviderResponseSchema,
  GetProviderResponseSchema,
  ListProvidersResponseSchema,
  type ModelService,
  UpdateProviderResponseSchema,
} from "../../gen/passerelle/models/v1/model_service_pb.js";
import type { CarbonParameters, ProviderType } from "../../gen/passerelle/models/v1/resources_pb.js";
import { invalidArgument, notFound } from "../platform/errors.js";
import { decodePageToken, pageSize, paginate } from "../platform/paging.js";
import type { ModelDeps } from "./deps.js";
import { PROVIDER_TYPE_NAMES, toProviderMsg } from "./mappers.js";
import type { ProviderInput } from "./model-store.js";
import {
  admin,
  type Carbon,
  checkCarbon,
  checkInt,
  checkKey,
  checkProviderFits,
  checkUpstreamModel,
  checkUrl,
  DEFAULT_CARBON_ZONE,
  DEFAULT_TIMEOUT_SECONDS,
  DEFAULT_WEIGHT,
  field,
  lookupId,
  MAX_CONCURRENCY,
  MAX_TIMEOUT_SECONDS,
  MAX_WEIGHT,
  type ProviderTypeName,
} from "./validation.js";

type ProviderHandlers = Pick<
  ServiceImpl<typeof ModelService>,
  "createProvider" | "getProvider" | "listProviders" | "updateProvider" | "deleteProvider"
>;

function providerType(value: ProviderType): ProviderTypeName {
  const name = PROVIDER_TYPE_NAMES.get(value);
  if (!name) throw invalidArgument("'type' must be set to a known provider type.", "type");
  return name;
}

const carbonOf = (c: CarbonParameters): Carbon =>
  field("carbon", () =>
    checkCarbon({ zone: c.zone || DEFAULT_CARBON_ZONE, totalParamsB: c.totalParamsB, activeParamsB: c.activeParamsB }),
  );

/**
 * Providers. Registering one, or changing where it points (type, URL, key, upstream model), probes the upstream
 * first: it must answer and serve the model, and agree with the model's other providers on what it learns.
 */
export function createProviderHandlers(deps: ModelDeps): ProviderHandlers {
  const { store, registry } = deps;

  return {
    async createProvider(req, ctx) {
      admin(ctx);
      if (!req.modelId) throw invalidArgument("'model_id' is required.", "model_id");
      const modelId = lookupId(req.modelId);
      const model = modelId ? await store.getModel(modelId) : null;
      if (!model) throw invalidArgument(`No model with id '${req.modelId}'.`, "model_id", "MODEL_NOT_FOUND");
      const type = providerType(req.type);
      field("type", () => checkProviderFits(type, model.type));
      const input: ProviderInput = {
        type,
        url: field("url", () => checkUrl(req.url)),
        apiKey: field("key", () => checkKey(req.key)),
        upstreamModel: field("upstream_model", () => checkUpstreamModel(req.upstreamModel)),
        timeoutSeconds:
          req.timeoutSeconds === 0
            ? DEFAULT_TIMEOUT_SECONDS
            : field("timeout_seconds", () => checkInt(req.timeoutSeconds, 1, MAX_TIMEOUT_SECONDS)),
        weight: req.weight === 0 ? DEFAULT_WEIGHT : field("weight", () => checkInt(req.weight, 1, MAX_WEIGHT)),
        maxConcurrency: field("max_concurrency", () => checkInt(req.maxConcurrency, 0, MAX_CONCURRENCY)),
        carbon: req.carbon ? carbonOf(req.carbon) : { zone: DEFAULT_CARBON_ZONE, totalParamsB: 0, activeParamsB: 0 },
      };
      const learned = await deps.probe({
        type,
        url: input.url,
        key: input.apiKey,
        upstreamModel: input.upstreamModel,
        modelType: model.type,
      });
      const provider = await store.createProvider(model.id, input, learned);
      if (!provider) throw invalidArgument(`No model with id '${req.modelId}'.`, "model_id", "MODEL_NOT_FOUND");
      await registry.invalidateAll();
      return create(CreateProviderResponseSchema, { provider: toProviderMsg(provider) });
    },

    async getProvider(req, ctx) {
      admin(ctx);
      const id = lookupId(req.id);
      const provider = id ? await store.getProvider(id) : null;
      if (!provider) throw notFound("provider", req.id);
      return create(GetProviderResponseSchema, { provider: toProviderMsg(provider) });
    },

    async listProviders(req, ctx) {
      admin(ctx);
      const size = pageSize(req.pageSize);
      let modelId: string | undefined;
      if (req.modelId) {
        modelId = lookupId(req.modelId);
        if (!modelId) throw invalidArgument("'model_id' is not a valid id.", "model_id");
      }
      const rows = await store.listProviders({ after: decodePageToken(req.pageToken), limit: size + 1 }, { modelId });
      const page = paginate(rows, size);
      return create(ListProvidersResponseSchema, {
        providers: page.items.map(toProviderMsg),
        nextPageToken: page.nextPageToken,
      });
    },

    async updateProvider(req, ctx) {
      admin(ctx);
      const id = lookupId(req.id);
      const current = id ? await store.getProvider(id) : null;
      if (!id || !current) throw notFound("provider", req.id);
      const patch: Partial<ProviderInput> = {};
      if (req.type !== undefined) patch.type = providerType(req.type);
      if (req.url !== undefined) patch.url = field("url", () => checkUrl(req.url ?? ""));
      if (req.key !== undefined) patch.apiKey = field("key", () => checkKey(req.key ?? ""));
      if (req.upstreamModel !== undefined) {
        patch.upstreamModel = field("upstream_model", () => checkUpstreamModel(req.upstreamModel ?? ""));
      }
      if (req.timeoutSeconds !== undefined) {
        patch.timeoutSeconds = field("timeout_seconds", () =>
          checkInt(req.timeoutSeconds ?? 0, 1, MAX_TIMEOUT_SECONDS),
        );
      }
      if (req.weight !== undefined) patch.weight = field("weight", () => checkInt(req.weight ?? 0, 1, MAX_WEIGHT));
      if (req.maxConcurrency !== undefined) {
        patch.maxConcurrency = field("max_concurrency", () => checkInt(req.maxConcurrency ?? 0, 0, MAX_CONCURRENCY));
      }
      if (req.carbon) patch.carbon = carbonOf(req.carbon);

      const modelType = current.model.type as Parameters<typeof checkProviderFits>[1];
      const type = patch.type ?? (current.type as ProviderTypeName);
      field("type", () => checkProviderFits(type, modelType));
      const repoint = ["type", "url", "apiKey", "upstreamModel"].some((k) => k in patch);
      const learned = repoint
        ? await deps.probe({
            type,
            url: patch.url ?? current.url,
            key: patch.apiKey === undefined ? (current.apiKey ?? null) : patch.apiKey,
            upstreamModel: patch.upstreamModel ?? current.upstreamModel,
            modelType,
          })
        : undefined;
      const provider = await store.updateProvider(id, patch, learned);
      if (!provider) throw notFound("provider", req.id);
      await registry.invalidateAll();
      return create(UpdateProviderResponseSchema, { provider: toProviderMsg(provider) });
    },

    async deleteProvider(req, ctx) {
      admin(ctx);
      const id = lookupId(req.id);
      if (!id || !(await store.deleteProvider(id))) throw notFound("provider", req.id);
      await registry.invalidateAll();
      return create(DeleteProviderResponseSchema, {});
    },
  };
}
