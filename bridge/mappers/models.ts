import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { AliasListSchema } from "../../gen/passerelle/models/v1/model_service_pb.js";
import {
  type CarbonParameters,
  CarbonParametersSchema,
  type Model,
  type ModelGrant,
  type ModelLimitsSchema,
  ModelType,
  type Provider,
  ProviderType,
} from "../../gen/passerelle/models/v1/resources_pb.js";
import { unix } from "./accounts.js";

/** Pure translations between the REST JSON of the model registry and its protobuf messages. */

export const MODEL_TYPES = [
  "text-generation",
  "image-text-to-text",
  "text-embeddings-inference",
  "text-classification",
  "automatic-speech-recognition",
] as const;
export type ModelTypeName = (typeof MODEL_TYPES)[number];
const MODEL_TYPE: Record<ModelTypeName, ModelType> = {
  "text-generation": ModelType.TEXT_GENERATION,
  "image-text-to-text": ModelType.IMAGE_TEXT_TO_TEXT,
  "text-embeddings-inference": ModelType.TEXT_EMBEDDINGS_INFERENCE,
  "text-classification": ModelType.TEXT_CLASSIFICATION,
  "automatic-speech-recognition": ModelType.AUTOMATIC_SPEECH_RECOGNITION,
};
const MODEL_TYPE_NAME = new Map(Object.entries(MODEL_TYPE).map(([n, v]) => [v, n]));

export const PROVIDER_TYPES = ["vllm", "tei", "openai"] as const;
export type ProviderTypeName = (typeof PROVIDER_TYPES)[number];
const PROVIDER_TYPE: Record<ProviderTypeName, ProviderType> = {
  vllm: ProviderType.VLLM,
  tei: ProviderType.TEI,
  openai: ProviderType.OPENAI,
};
const PROVIDER_TYPE_NAME = new Map(Object.entries(PROVIDER_TYPE).map(([n, v]) => [v, n]));

/** Who `owned_by` names in OpenAI's model object: the platform serves every model. */
export const OWNED_BY = "passerelle";

export function modelTypeToProto(name: ModelTypeName): ModelType {
  return MODEL_TYPE[name];
}

export function providerTypeToProto(name: ProviderTypeName): ProviderType {
  return PROVIDER_TYPE[name];
}

export function aliasListToProto(aliases: string[]) {
  return create(AliasListSchema, { aliases });
}

export interface CarbonJson {
  zone?: string;
  total_params_b?: number;
  active_params_b?: number;
}

export function carbonToProto(c: CarbonJson): CarbonParameters {
  return create(CarbonParametersSchema, {
    zone: c.zone ?? "",
    totalParamsB: c.total_params_b ?? 0,
    activeParamsB: c.active_params_b ?? 0,
  });
}

const orNull = (n: number) => (n > 0 ? n : null);
const costs = (m: Model) => ({ prompt_tokens: m.costPromptPerMillion, completion_tokens: m.costCompletionPerMillion });

/** OpenAI's model object (`id` is the public name), with the registry's extras. */
export function openAIModelJson(m: Model) {
  return {
    id: m.name,
    object: "model" as const,
    created: unix(m.createTime) ?? 0,
    owned_by: OWNED_BY,
    type: MODEL_TYPE_NAME.get(m.type) ?? "unknown",
    aliases: m.aliases,
    max_context_length: orNull(m.maxContextLength),
    vector_size: orNull(m.vectorSize),
    costs: costs(m),
  };
}

export function providerJson(p: Provider) {
  return {
    object: "provider" as const,
    id: p.id,
    model: p.modelId,
    type: PROVIDER_TYPE_NAME.get(p.type) ?? "unknown",
    url: p.url,
    has_key: p.hasKey,
    model_name: p.upstreamModel,
    timeout_s: p.timeoutSeconds,
    weight: p.weight,
    max_concurrency: p.maxConcurrency,
    carbon: {
      zone: p.carbon?.zone ?? "WOR",
      total_params_b: p.carbon?.totalParamsB ?? 0,
      active_params_b: p.carbon?.activeParamsB ?? 0,
    },
    created: unix(p.createTime) ?? 0,
    updated: unix(p.updateTime) ?? 0,
  };
}

/** The administrators' view of a model: its id, providers and the roles granted it. */
export function adminModelJson(m: Model) {
  return {
    object: "model" as const,
    id: m.id,
    name: m.name,
    aliases: m.aliases,
    type: MODEL_TYPE_NAME.get(m.type) ?? "unknown",
    max_context_length: orNull(m.maxContextLength),
    vector_size: orNull(m.vectorSize),
    costs: costs(m),
    providers: m.providers.map(providerJson),
    roles: m.grantedRoleIds,
    created: unix(m.createTime) ?? 0,
    updated: unix(m.updateTime) ?? 0,
  };
}

export function grantJson(g: ModelGrant) {
  const l = g.limits;
  return {
    object: "model_grant" as const,
    id: g.id,
    role: g.roleId,
    model: g.modelId,
    created: unix(g.createTime) ?? 0,
    limits: {
      requests_per_minute: l?.requestsPerMinute ?? null,
      requests_per_day: l?.requestsPerDay ?? null,
      tokens_per_minute: l?.tokensPerMinute ?? null,
      tokens_per_day: l?.tokensPerDay ?? null,
    },
  };
}

/** The REST body of a grant's limits. */
export interface GrantLimitsJson {
  requests_per_minute?: number | null;
  requests_per_day?: number | null;
  tokens_per_minute?: number | null;
  tokens_per_day?: number | null;
}

export function grantLimitsFromJson(b: GrantLimitsJson): MessageInitShape<typeof ModelLimitsSchema> {
  return {
    requestsPerMinute: b.requests_per_minute ?? undefined,
    requestsPerDay: b.requests_per_day ?? undefined,
    tokensPerMinute: b.tokens_per_minute ?? undefined,
    tokensPerDay: b.tokens_per_day ?? undefined,
  };
}
