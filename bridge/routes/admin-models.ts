import { create } from "@bufbuild/protobuf";
import type { FastifyInstance } from "fastify";
import { ModelSchema, ProviderSchema } from "../../gen/passerelle/models/v1/resources_pb.js";
import { listJson } from "../mappers/accounts.js";
import {
  adminModelJson,
  aliasListToProto,
  type CarbonJson,
  carbonToProto,
  type GrantLimitsJson,
  grantJson,
  grantLimitsFromJson,
  type ModelTypeName,
  modelTypeToProto,
  type ProviderTypeName,
  providerJson,
  providerTypeToProto,
} from "../mappers/models.js";
import { type Clients, callOptions } from "../rpc.js";
import { deletedSchema, errorResponses, idParams, listSchema, pagingQuery } from "../schemas/common.js";
import {
  createModelBody,
  createProviderBody,
  grantLimitsBody,
  grantParams,
  updateModelBody,
  updateProviderBody,
} from "../schemas/models.js";

type Costs = { prompt_tokens?: number; completion_tokens?: number };
type ModelBody = { name?: string; aliases?: string[]; type?: ModelTypeName; costs?: Costs };
type ProviderBody = {
  model?: string;
  type?: ProviderTypeName;
  url?: string;
  key?: string | null;
  model_name?: string;
  timeout_s?: number;
  weight?: number;
  max_concurrency?: number;
  carbon?: CarbonJson;
};
type IdParams = { Params: { id: string } };

const tags = ["admin"];
const security = [{ bearer: [] }];

/**
 * `/v1/admin/models`, `/v1/admin/providers` and `/v1/admin/roles/{id}/models/{model}` (grants, by ids): the admin
 * API of the model registry. Registering or re-pointing a provider probes the upstream: 409 when it cannot be used.
 */
export function adminModelRoutes(app: FastifyInstance, clients: Clients): void {
  const m = clients.models;
  const modelOf = (res: { model?: Parameters<typeof adminModelJson>[0] }) =>
    adminModelJson(res.model ?? create(ModelSchema));
  const providerOf = (res: { provider?: Parameters<typeof providerJson>[0] }) =>
    providerJson(res.provider ?? create(ProviderSchema));
  const one = (ref: string) => ({
    tags,
    security,
    params: idParams,
    response: { 200: { $ref: `${ref}#` }, ...errorResponses },
  });
  const created = (ref: string) => ({ tags, security, response: { 201: { $ref: `${ref}#` }, ...errorResponses } });
  const deleted = (object: string) => ({
    tags,
    security,
    params: idParams,
    response: { 200: deletedSchema(object), ...errorResponses },
  });

  app.post<{ Body: ModelBody }>(
    "/v1/admin/models",
    { schema: { ...created("AdminModel"), summary: "Creates a model (without providers).", body: createModelBody } },
    async (req, reply) => {
      const b = req.body;
      const res = await m.createModel(
        {
          name: b.name ?? "",
          aliases: b.aliases ?? [],
          type: b.type ? modelTypeToProto(b.type) : undefined,
          costPromptPerMillion: b.costs?.prompt_tokens ?? 0,
          costCompletionPerMillion: b.costs?.completion_tokens ?? 0,
        },
        callOptions(req, reply),
      );
      reply.code(201);
      return modelOf(res);
    },
  );
  app.get<{ Querystring: { limit: number; after?: string; name?: string } }>(
    "/v1/admin/models",
    {
      schema: {
        tags,
        security,
        summary: "Lists every model, with providers and grants.",
        querystring: {
          type: "object",
          properties: {
            ...pagingQuery,
            name: { type: "string", maxLength: 200, description: "Substring of the name." },
          },
        },
        response: { 200: listSchema("AdminModel"), ...errorResponses },
      },
    },
    async (req, reply) => {
      const q = req.query;
      const res = await m.adminListModels(
        { pageSize: q.limit, pageToken: q.after ?? "", name: q.name ?? "" },
        callOptions(req, reply),
      );
      return listJson(res.models.map(adminModelJson), res.nextPageToken);
    },
  );
  app.get<IdParams>(
    "/v1/admin/models/:id",
    { schema: { ...one("AdminModel"), summary: "Reads a model." } },
    async (req, reply) => modelOf(await m.adminGetModel({ id: req.params.id }, callOptions(req, reply))),
  );
  app.patch<IdParams & { Body: ModelBody }>(
    "/v1/admin/models/:id",
    {
      schema: {
        ...one("AdminModel"),
        summary: "Updates the fields given; `aliases` replaces the list; `type` only without providers.",
        body: updateModelBody,
      },
    },
    async (req, reply) => {
      const b = req.body;
      const res = await m.updateModel(
        {
          id: req.params.id,
          name: b.name,
          aliases: b.aliases ? aliasListToProto(b.aliases) : undefined,
          type: b.type ? modelTypeToProto(b.type) : undefined,
          costPromptPerMillion: b.costs?.prompt_tokens,
          costCompletionPerMillion: b.costs?.completion_tokens,
        },
        callOptions(req, reply),
      );
      return modelOf(res);
    },
  );
  app.delete<IdParams>(
    "/v1/admin/models/:id",
    { schema: { ...deleted("model"), summary: "Deletes a model with its providers and grants." } },
    async (req, reply) => {
      await m.deleteModel({ id: req.params.id }, callOptions(req, reply));
      return { id: req.params.id, object: "model.deleted", deleted: true };
    },
  );

  app.post<{ Body: ProviderBody }>(
    "/v1/admin/providers",
    {
      schema: {
        ...created("Provider"),
        summary: "Registers a provider after probing its upstream (409 when unreachable or inconsistent).",
        body: createProviderBody,
      },
    },
    async (req, reply) => {
      const b = req.body;
      const res = await m.createProvider(
        {
          modelId: b.model ?? "",
          type: b.type ? providerTypeToProto(b.type) : undefined,
          url: b.url ?? "",
          key: b.key ?? "",
          upstreamModel: b.model_name ?? "",
          timeoutSeconds: b.timeout_s ?? 0,
          weight: b.weight ?? 0,
          maxConcurrency: b.max_concurrency ?? 0,
          carbon: b.carbon ? carbonToProto(b.carbon) : undefined,
        },
        callOptions(req, reply),
      );
      reply.code(201);
      return providerOf(res);
    },
  );
  app.get<{ Querystring: { limit: number; after?: string; model?: string } }>(
    "/v1/admin/providers",
    {
      schema: {
        tags,
        security,
        summary: "Lists providers.",
        querystring: {
          type: "object",
          properties: { ...pagingQuery, model: { type: "string", maxLength: 64, description: "Only this model's." } },
        },
        response: { 200: listSchema("Provider"), ...errorResponses },
      },
    },
    async (req, reply) => {
      const q = req.query;
      const res = await m.listProviders(
        { pageSize: q.limit, pageToken: q.after ?? "", modelId: q.model ?? "" },
        callOptions(req, reply),
      );
      return listJson(res.providers.map(providerJson), res.nextPageToken);
    },
  );
  app.get<IdParams>(
    "/v1/admin/providers/:id",
    { schema: { ...one("Provider"), summary: "Reads a provider." } },
    async (req, reply) => providerOf(await m.getProvider({ id: req.params.id }, callOptions(req, reply))),
  );
  app.patch<IdParams & { Body: ProviderBody }>(
    "/v1/admin/providers/:id",
    {
      schema: {
        ...one("Provider"),
        summary: "Updates the fields given; a new type, url, key or model_name is probed first; key null removes it.",
        body: updateProviderBody,
      },
    },
    async (req, reply) => {
      const b = req.body;
      const res = await m.updateProvider(
        {
          id: req.params.id,
          type: b.type ? providerTypeToProto(b.type) : undefined,
          url: b.url,
          key: b.key === undefined ? undefined : (b.key ?? ""),
          upstreamModel: b.model_name,
          timeoutSeconds: b.timeout_s,
          weight: b.weight,
          maxConcurrency: b.max_concurrency,
          carbon: b.carbon ? carbonToProto(b.carbon) : undefined,
        },
        callOptions(req, reply),
      );
      return providerOf(res);
    },
  );
  app.delete<IdParams>(
    "/v1/admin/providers/:id",
    { schema: { ...deleted("provider"), summary: "Deletes a provider." } },
    async (req, reply) => {
      await m.deleteProvider({ id: req.params.id }, callOptions(req, reply));
      return { id: req.params.id, object: "provider.deleted", deleted: true };
    },
  );

  type GrantParams = { Params: { id: string; model: string } };
  app.post<GrantParams>(
    "/v1/admin/roles/:id/models/:model",
    {
      schema: {
        tags,
        security,
        summary:
          "Lets the role use the model (both by id), within optional limits per user: requests and tokens per minute " +
          "and per day (null or absent = unlimited, 0 = forbidden: hidden and refused). Granting again returns the " +
          "existing grant; a body replaces its limits.",
        params: grantParams,
        body: grantLimitsBody,
        response: { 200: { $ref: "ModelGrant#" }, ...errorResponses },
      },
    },
    async (req, reply) => {
      const limits = req.body ? grantLimitsFromJson(req.body as GrantLimitsJson) : undefined;
      const res = await m.grantModel(
        { roleId: req.params.id, modelId: req.params.model, limits },
        callOptions(req, reply),
      );
      if (!res.grant) throw new Error("GrantModel returned no grant");
      return grantJson(res.grant);
    },
  );
  app.delete<GrantParams>(
    "/v1/admin/roles/:id/models/:model",
    {
      schema: {
        tags,
        security,
        summary: "Takes the model away from the role (404 when it was not granted).",
        params: grantParams,
        response: { 200: deletedSchema("model_grant"), ...errorResponses },
      },
    },
    async (req, reply) => {
      const res = await m.revokeModel({ roleId: req.params.id, modelId: req.params.model }, callOptions(req, reply));
      return { id: res.grant?.id ?? "", object: "model_grant.deleted", deleted: true };
    },
  );
}
