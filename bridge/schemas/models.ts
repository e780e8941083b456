import { MODEL_TYPES, PROVIDER_TYPES } from "../mappers/models.js";
import { unixTime } from "./common.js";

/** JSON schemas of the model registry's REST API (responses are serialized through them: list every field). */

const name = { type: "string", minLength: 1, maxLength: 200 } as const;
const countOrNull = { type: ["integer", "null"], minimum: 1 } as const;
const cost = { type: "number", minimum: 0, maximum: 1e9 } as const;

const costsSchema = {
  type: "object",
  description: "Prices per million tokens.",
  properties: { prompt_tokens: cost, completion_tokens: cost },
  required: ["prompt_tokens", "completion_tokens"],
} as const;

const carbonSchema = {
  type: "object",
  properties: {
    zone: { type: "string", description: "ISO 3166-1 alpha-3 hosting country, or WOR (world average)." },
    total_params_b: { type: "number", description: "Total parameters, in billions (0 = unknown)." },
    active_params_b: { type: "number", description: "Parameters active per token, in billions (0 = unknown)." },
  },
  required: ["zone", "total_params_b", "active_params_b"],
} as const;

/** OpenAI's model object with Passerelle's extras; `id` is the name clients send as `model`. */
export const openAIModelSchema = {
  $id: "Model",
  type: "object",
  properties: {
    id: { type: "string", description: "The model's public name." },
    object: { type: "string", enum: ["model"] },
    created: unixTime,
    owned_by: { type: "string" },
    type: { type: "string", enum: MODEL_TYPES },
    aliases: { type: "array", items: { type: "string" }, description: "Other names accepted as `model`." },
    max_context_length: { ...countOrNull, description: "Longest context in tokens; null when unknown." },
    vector_size: { ...countOrNull, description: "Embedding length of an embeddings model; null otherwise." },
    costs: costsSchema,
  },
  required: ["id", "object", "created", "owned_by", "type", "aliases", "max_context_length", "vector_size", "costs"],
} as const;

export const modelListSchema = {
  type: "object",
  properties: {
    object: { type: "string", enum: ["list"] },
    data: { type: "array", items: { $ref: "Model#" } },
  },
  required: ["object", "data"],
} as const;

export const providerSchema = {
  $id: "Provider",
  type: "object",
  properties: {
    object: { type: "string", enum: ["provider"] },
    id: { type: "string" },
    model: { type: "string", description: "Model id." },
    type: { type: "string", enum: PROVIDER_TYPES },
    url: { type: "string", description: "Base URL of the upstream, without /v1." },
    has_key: { type: "boolean", description: "Whether an upstream key is set; the key is never returned." },
    model_name: { type: "string", description: "The model name the upstream knows." },
    timeout_s: { type: "integer" },
    weight: { type: "integer" },
    max_concurrency: { type: "integer", description: "0 = no limit." },
    carbon: carbonSchema,
    created: unixTime,
    updated: unixTime,
  },
  required: [
    "object",
    "id",
    "model",
    "type",
    "url",
    "has_key",
    "model_name",
    "timeout_s",
    "weight",
    "max_concurrency",
    "carbon",
    "created",
    "updated",
  ],
} as const;

export const adminModelSchema = {
  $id: "AdminModel",
  type: "object",
  properties: {
    object: { type: "string", enum: ["model"] },
    id: { type: "string" },
    name: { type: "string" },
    aliases: { type: "array", items: { type: "string" } },
    type: { type: "string", enum: MODEL_TYPES },
    max_context_length: countOrNull,
    vector_size: countOrNull,
    costs: costsSchema,
    providers: { type: "array", items: { $ref: "Provider#" } },
    roles: { type: "array", items: { type: "string" }, description: "Ids of the roles granted the model." },
    created: unixTime,
    updated: unixTime,
  },
  required: [
    "object",
    "id",
    "name",
    "aliases",
    "type",
    "max_context_length",
    "vector_size",
    "costs",
    "providers",
    "roles",
    "created",
    "updated",
  ],
} as const;

export const modelGrantSchema = {
  $id: "ModelGrant",
  type: "object",
  properties: {
    object: { type: "string", enum: ["model_grant"] },
    id: { type: "string" },
    role: { type: "string" },
    model: { type: "string" },
    created: unixTime,
    limits: {
      type: "object",
      description: "Per user, over sliding windows; null = unlimited, 0 = forbidden.",
      properties: {
        requests_per_minute: { type: ["integer", "null"] },
        requests_per_day: { type: ["integer", "null"] },
        tokens_per_minute: { type: ["integer", "null"] },
        tokens_per_day: { type: ["integer", "null"] },
      },
    },
  },
  required: ["object", "id", "role", "model", "created"],
} as const;

const limit = { type: ["integer", "null"], minimum: 0, maximum: 4294967295 } as const;
/** Body of a grant: optional limits (absent = keep the grant's limits, or none for a new grant). */
export const grantLimitsBody = {
  type: ["object", "null"],
  properties: {
    requests_per_minute: limit,
    requests_per_day: limit,
    tokens_per_minute: limit,
    tokens_per_day: limit,
  },
  additionalProperties: false,
} as const;

const costsBody = {
  type: "object",
  additionalProperties: false,
  properties: { prompt_tokens: cost, completion_tokens: cost },
} as const;

export const createModelBody = {
  type: "object",
  additionalProperties: false,
  properties: {
    name,
    aliases: { type: "array", maxItems: 32, items: name },
    type: { type: "string", enum: MODEL_TYPES },
    costs: costsBody,
  },
  required: ["name", "type"],
} as const;

export const updateModelBody = {
  type: "object",
  additionalProperties: false,
  minProperties: 1,
  properties: {
    ...createModelBody.properties,
    aliases: { ...createModelBody.properties.aliases, description: "Replaces the aliases." },
  },
} as const;

const carbonBody = {
  type: "object",
  additionalProperties: false,
  properties: {
    zone: { type: "string", minLength: 3, maxLength: 3 },
    total_params_b: { type: "number", minimum: 0 },
    active_params_b: { type: "number", minimum: 0 },
  },
} as const;

const providerFields = {
  type: { type: "string", enum: PROVIDER_TYPES },
  url: { type: "string", minLength: 1, maxLength: 2048, description: "http(s) base URL, without /v1." },
  model_name: name,
  timeout_s: { type: "integer", minimum: 1, maximum: 3600 },
  weight: { type: "integer", minimum: 1, maximum: 1000 },
  max_concurrency: { type: "integer", minimum: 0, maximum: 100000 },
  carbon: carbonBody,
} as const;

export const createProviderBody = {
  type: "object",
  additionalProperties: false,
  properties: {
    model: { type: "string", minLength: 1, maxLength: 64, description: "Model id." },
    ...providerFields,
    key: { type: ["string", "null"], maxLength: 4096, description: "Upstream API key; stored, never returned." },
  },
  required: ["model", "type", "url", "model_name"],
} as const;

export const updateProviderBody = {
  type: "object",
  additionalProperties: false,
  minProperties: 1,
  properties: {
    ...providerFields,
    key: { type: ["string", "null"], maxLength: 4096, description: "New upstream API key; null removes it." },
  },
} as const;

export const modelParams = {
  type: "object",
  properties: { model: { type: "string", minLength: 1, maxLength: 200, description: "Model name or alias." } },
  required: ["model"],
} as const;

export const grantParams = {
  type: "object",
  properties: {
    id: { type: "string", maxLength: 64, description: "Role id." },
    model: { type: "string", maxLength: 64, description: "Model id." },
  },
  required: ["id", "model"],
} as const;
