import { create } from "@bufbuild/protobuf";
import { Code, type ServiceImpl } from "@connectrpc/connect";
import {
  AdminGetModelResponseSchema,
  AdminListModelsResponseSchema,
  CreateModelResponseSchema,
  DeleteModelResponseSchema,
  GetModelResponseSchema,
  GrantModelResponseSchema,
  ListModelsResponseSchema,
  type ModelService,
  RevokeModelResponseSchema,
  UpdateModelResponseSchema,
} from "../../gen/passerelle/models/v1/model_service_pb.js";
import type { ModelLimits, ModelType } from "../../gen/passerelle/models/v1/resources_pb.js";
import { invalidArgument, notFound, rpcError } from "../platform/errors.js";
import { decodePageToken, pageSize, paginate } from "../platform/paging.js";
import type { ModelDeps } from "./deps.js";
import { MODEL_TYPE_NAMES, toGrantMsg, toModelMsg } from "./mappers.js";
import type { GrantLimits, ModelPatch } from "./model-store.js";
import { modelNotFound } from "./registry.js";
import {
  admin,
  checkAliases,
  checkCost,
  checkModelName,
  checkNameFilter,
  field,
  isAdmin,
  lookupId,
  type ModelTypeName,
  principalOf,
} from "./validation.js";

type ModelHandlers = Pick<
  ServiceImpl<typeof ModelService>,
  | "listModels"
  | "getModel"
  | "createModel"
  | "adminGetModel"
  | "adminListModels"
  | "updateModel"
  | "deleteModel"
  | "grantModel"
  | "revokeModel"
>;

/** A grant's limits from the request: unset fields are unlimited. The database stores tokens as bigint. */
function grantLimits(l: ModelLimits | undefined): GrantLimits | undefined {
  if (!l) return undefined;
  return {
    requestsPerMinute: l.requestsPerMinute ?? null,
    requestsPerDay: l.requestsPerDay ?? null,
    tokensPerMinute: l.tokensPerMinute ?? null,
    tokensPerDay: l.tokensPerDay ?? null,
  };
}

function modelType(value: ModelType, param = "type"): ModelTypeName {
  const name = MODEL_TYPE_NAMES.get(value);
  if (!name) throw invalidArgument(`'${param}' must be set to a known model type.`, param);
  return name;
}

/** Models: what callers may use, and the admin CRUD and grants. Every write invalidates the resolution cache. */
export function createModelHandlers(deps: ModelDeps): ModelHandlers {
  const { store, registry } = deps;

  return {
    async listModels(req, ctx) {
      const p = principalOf(ctx);
      const size = pageSize(req.pageSize);
      const rows = await store.listModels(
        { after: decodePageToken(req.pageToken), limit: size + 1 },
        { grantedTo: isAdmin(p) ? undefined : p.roleId },
      );
      const page = paginate(rows, size);
      return create(ListModelsResponseSchema, {
        models: page.items.map(toModelMsg),
        nextPageToken: page.nextPageToken,
      });
    },

    async getModel(req, ctx) {
      const p = principalOf(ctx);
      if (!req.name) throw modelNotFound(req.name);
      const m = await registry.resolve(req.name, p);
      // The public view: a plain record, no providers.
      const { providers: _providers, ...rest } = m;
      return create(GetModelResponseSchema, { model: toModelMsg({ ...rest, aliases: [...m.aliases] }) });
    },

    async createModel(req, ctx) {
      admin(ctx);
      const name = field("name", () => checkModelName(req.name));
      const model = await store.createModel({
        name,
        aliases: field("aliases", () => checkAliases(req.aliases, name)),
        type: modelType(req.type),
        costPromptPerMillion: field("cost_prompt_per_million", () => checkCost(req.costPromptPerMillion)),
        costCompletionPerMillion: field("cost_completion_per_million", () => checkCost(req.costCompletionPerMillion)),
      });
      await registry.invalidateAll();
      return create(CreateModelResponseSchema, { model: toModelMsg(model) });
    },

    async adminGetModel(req, ctx) {
      admin(ctx);
      const id = lookupId(req.id);
      const model = id ? await store.getModel(id) : null;
      if (!model) throw notFound("model", req.id);
      return create(AdminGetModelResponseSchema, { model: toModelMsg(model) });
    },

    async adminListModels(req, ctx) {
      admin(ctx);
      const size = pageSize(req.pageSize);
      const rows = await store.listModelDetails(
        { after: decodePageToken(req.pageToken), limit: size + 1 },
        { name: req.name ? field("name", () => checkNameFilter(req.name)) : undefined },
      );
      const page = paginate(rows, size);
      return create(AdminListModelsResponseSchema, {
        models: page.items.map(toModelMsg),
        nextPageToken: page.nextPageToken,
      });
    },

    async updateModel(req, ctx) {
      admin(ctx);
      const id = lookupId(req.id);
      if (!id) throw notFound("model", req.id);
      const patch: ModelPatch = {};
      if (req.name !== undefined) patch.name = field("name", () => checkModelName(req.name as string));
      if (req.aliases) patch.aliases = field("aliases", () => checkAliases(req.aliases?.aliases ?? [], patch.name));
      if (req.type !== undefined) patch.type = modelType(req.type);
      if (req.costPromptPerMillion !== undefined) {
        patch.costPromptPerMillion = field("cost_prompt_per_million", () => checkCost(req.costPromptPerMillion ?? 0));
      }
      if (req.costCompletionPerMillion !== undefined) {
        patch.costCompletionPerMillion = field("cost_completion_per_million", () =>
          checkCost(req.costCompletionPerMillion ?? 0),
        );
      }
      const model = await store.updateModel(id, patch);
      if (!model) throw notFound("model", req.id);
      await registry.invalidateAll();
      return create(UpdateModelResponseSchema, { model: toModelMsg(model) });
    },

    async deleteModel(req, ctx) {
      admin(ctx);
      const id = lookupId(req.id);
      if (!id || !(await store.deleteModel(id))) throw notFound("model", req.id);
      await registry.invalidateAll();
      return create(DeleteModelResponseSchema, {});
    },

    async grantModel(req, ctx) {
      admin(ctx);
      const modelId = lookupId(req.modelId);
      const roleId = lookupId(req.roleId);
      if (!modelId || !(await store.getModel(modelId))) throw notFound("model", req.modelId);
      const grant = roleId ? await store.grant(roleId, modelId, grantLimits(req.limits)) : null;
      if (!grant) throw notFound("role", req.roleId);
      await registry.invalidateAll();
      return create(GrantModelResponseSchema, { grant: toGrantMsg(grant) });
    },

    async revokeModel(req, ctx) {
      admin(ctx);
      const modelId = lookupId(req.modelId);
      const roleId = lookupId(req.roleId);
      const grant = modelId && roleId ? await store.revoke(roleId, modelId) : null;
      if (!grant) {
        throw rpcError(
          Code.NotFound,
          `Role '${req.roleId}' has no grant on model '${req.modelId}'.`,
          "MODEL_GRANT_NOT_FOUND",
        );
      }
      await registry.invalidateAll();
      return create(RevokeModelResponseSchema, { grant: toGrantMsg(grant) });
    },
  };
}
