import { defineEntity, type InferEntity, p } from "@mikro-orm/core";
import { createdAtColumn as createdAt, idColumn as id, updatedAtColumn as updatedAt } from "../platform/db/columns.js";

/** double precision, read as a JS number (MikroORM's default for doubles is a string). */
const double = () => p.double().runtimeType("number").$type<number>();

export const ModelEntity = defineEntity({
  name: "ModelEntity",
  tableName: "model",
  properties: {
    id: id(),
    /** Public name; also a row of `model_name`, which is what makes it unique among names and aliases. */
    name: p.string().length(200).unique(),
    /** `text-generation`, `image-text-to-text`, `text-embeddings-inference`, … */
    type: p.string().length(40),
    /** Learned from the providers; null while unknown. */
    maxContextLength: p.integer().nullable(),
    /** Learned from the providers of an embeddings model; null otherwise. */
    vectorSize: p.integer().nullable(),
    costPromptPerMillion: double(),
    costCompletionPerMillion: double(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
});
export type Model = InferEntity<typeof ModelEntity>;

/**
 * The one namespace of model names and aliases: every name and every alias of every model is a row here, and the
 * primary key makes the database refuse a second model (or alias) with a name already taken, whatever the race.
 */
export const ModelNameEntity = defineEntity({
  name: "ModelNameEntity",
  tableName: "model_name",
  properties: {
    name: p.string().length(200).primary(),
    model: () => p.manyToOne(ModelEntity).deleteRule("cascade").index(),
    /** False for the model's own name, true for an alias. */
    alias: p.boolean(),
  },
});
export type ModelName = InferEntity<typeof ModelNameEntity>;

export const ProviderEntity = defineEntity({
  name: "ProviderEntity",
  tableName: "provider",
  uniques: [{ properties: ["model", "url", "upstreamModel"] }],
  properties: {
    id: id(),
    // Indexed by the unique (model, url, upstream model) constraint, which leads with it.
    model: () => p.manyToOne(ModelEntity).deleteRule("cascade"),
    /** `vllm`, `tei` or `openai`. */
    type: p.string().length(16),
    /** Base URL without a trailing slash. */
    url: p.string().length(2048),
    /**
     * The upstream's API key, stored as given because it must be sent as is. A secret: hidden from serialization,
     * never logged, never returned by any API (responses carry `has_key` only).
     */
    apiKey: p.text().nullable().hidden(),
    upstreamModel: p.string().length(200),
    timeoutSeconds: p.integer(),
    weight: p.integer(),
    /** 0 = no limit. */
    maxConcurrency: p.integer(),
    /** ISO 3166-1 alpha-3, or `WOR`. */
    carbonZone: p.string().length(3),
    carbonTotalParamsB: double(),
    carbonActiveParamsB: double(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
});
export type Provider = InferEntity<typeof ProviderEntity>;

/**
 * A role's right to use a model. `roleId` is a plain column here (the role belongs to the accounts domain); the
 * migration gives it a foreign key to `role` with ON DELETE CASCADE.
 */
export const ModelGrantEntity = defineEntity({
  name: "ModelGrantEntity",
  tableName: "model_grant",
  uniques: [{ properties: ["roleId", "model"] }],
  properties: {
    id: id(),
    roleId: p.uuid(),
    model: () => p.manyToOne(ModelEntity).deleteRule("cascade").index(),
    createdAt: createdAt(),
    /** Limits (governance): null = unlimited, 0 = forbidden. */
    requestsPerMinute: p.bigint("number").nullable(),
    requestsPerDay: p.bigint("number").nullable(),
    tokensPerMinute: p.bigint("number").nullable(),
    tokensPerDay: p.bigint("number").nullable(),
  },
});
export type ModelGrant = InferEntity<typeof ModelGrantEntity>;

export const modelEntities = [ModelEntity, ModelNameEntity, ProviderEntity, ModelGrantEntity];
