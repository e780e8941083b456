import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  CarbonParametersSchema,
  type ModelGrant as ModelGrantMsg,
  ModelGrantSchema,
  type Model as ModelMsg,
  ModelSchema,
  ModelType,
  type Provider as ProviderMsg,
  ProviderSchema,
  ProviderType,
} from "../../gen/passerelle/models/v1/resources_pb.js";
import type { ModelGrant } from "./entities.js";
import type { ModelDetail, ModelRecord, ProviderRecord } from "./model-store.js";
import type { ModelTypeName, ProviderTypeName } from "./validation.js";

/** Stored type names ⇄ proto enum values. */
export const MODEL_TYPE_NAMES: ReadonlyMap<ModelType, ModelTypeName> = new Map([
  [ModelType.TEXT_GENERATION, "text-generation"],
  [ModelType.IMAGE_TEXT_TO_TEXT, "image-text-to-text"],
  [ModelType.TEXT_EMBEDDINGS_INFERENCE, "text-embeddings-inference"],
  [ModelType.TEXT_CLASSIFICATION, "text-classification"],
  [ModelType.AUTOMATIC_SPEECH_RECOGNITION, "automatic-speech-recognition"],
]);
const MODEL_TYPE_VALUES = new Map([...MODEL_TYPE_NAMES].map(([v, n]) => [n as string, v]));

export const PROVIDER_TYPE_NAMES: ReadonlyMap<ProviderType, ProviderTypeName> = new Map([
  [ProviderType.VLLM, "vllm"],
  [ProviderType.TEI, "tei"],
  [ProviderType.OPENAI, "openai"],
]);
const PROVIDER_TYPE_VALUES = new Map([...PROVIDER_TYPE_NAMES].map(([v, n]) => [n as string, v]));

const ts = (d: Date) => timestampFromDate(d);

export function toProviderMsg(p: ProviderRecord): ProviderMsg {
  return create(ProviderSchema, {
    id: p.id,
    modelId: p.model.id,
    type: PROVIDER_TYPE_VALUES.get(p.type) ?? ProviderType.UNSPECIFIED,
    url: p.url,
    // The key itself never leaves the service.
    hasKey: p.apiKey != null && p.apiKey !== "",
    upstreamModel: p.upstreamModel,
    timeoutSeconds: p.timeoutSeconds,
    weight: p.weight,
    maxConcurrency: p.maxConcurrency,
    carbon: create(CarbonParametersSchema, {
      zone: p.carbonZone,
      totalParamsB: p.carbonTotalParamsB,
      activeParamsB: p.carbonActiveParamsB,
    }),
    createTime: ts(p.createdAt),
    updateTime: ts(p.updatedAt),
  });
}

/** A model; with a ModelDetail (administrators' views), its providers and grants too. */
export function toModelMsg(m: ModelRecord | ModelDetail): ModelMsg {
  return create(ModelSchema, {
    id: m.id,
    name: m.name,
    aliases: [...m.aliases],
    type: MODEL_TYPE_VALUES.get(m.type) ?? ModelType.UNSPECIFIED,
    maxContextLength: m.maxContextLength ?? 0,
    vectorSize: m.vectorSize ?? 0,
    costPromptPerMillion: m.costPromptPerMillion,
    costCompletionPerMillion: m.costCompletionPerMillion,
    providers: "providers" in m ? m.providers.map(toProviderMsg) : [],
    grantedRoleIds: "grantedRoleIds" in m ? [...m.grantedRoleIds] : [],
    createTime: ts(m.createdAt),
    updateTime: ts(m.updatedAt),
  });
}

export function toGrantMsg(g: ModelGrant): ModelGrantMsg {
  return create(ModelGrantSchema, {
    id: g.id,
    roleId: g.roleId,
    modelId: g.model.id,
    createTime: ts(g.createdAt),
    limits: {
      requestsPerMinute: g.requestsPerMinute ?? undefined,
      requestsPerDay: g.requestsPerDay ?? undefined,
      tokensPerMinute: g.tokensPerMinute ?? undefined,
      tokensPerDay: g.tokensPerDay ?? undefined,
    },
  });
}
