import { defineEntity, type InferEntity, p } from "@mikro-orm/core";
import { createdAtColumn as createdAt, idColumn as id, updatedAtColumn as updatedAt } from "../platform/db/columns.js";

export const OrganizationEntity = defineEntity({
  name: "OrganizationEntity",
  tableName: "organization",
  properties: {
    id: id(),
    name: p.string().length(200).unique(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
});
export type Organization = InferEntity<typeof OrganizationEntity>;

export const RoleEntity = defineEntity({
  name: "RoleEntity",
  tableName: "role",
  properties: {
    id: id(),
    name: p.string().length(100).unique(),
    /** Permission names (`admin`, `create_public_collection`, `read_metrics`). */
    permissions: p.array().columnType("text[]"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
});
export type Role = InferEntity<typeof RoleEntity>;

export const UserEntity = defineEntity({
  name: "UserEntity",
  tableName: "app_user",
  properties: {
    id: id(),
    /** Lower-case; unique. */
    email: p.string().length(320).unique(),
    name: p.string().length(200),
    /** argon2id PHC string; null for key-only accounts. */
    passwordHash: p.text().nullable().hidden(),
    role: () => p.manyToOne(RoleEntity).deleteRule("restrict").index(),
    organization: () => p.manyToOne(OrganizationEntity).nullable().deleteRule("restrict").index(),
    expiresAt: p.datetime().columnType("timestamptz").nullable(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
});
export type User = InferEntity<typeof UserEntity>;

export const ApiKeyEntity = defineEntity({
  name: "ApiKeyEntity",
  tableName: "api_key",
  properties: {
    id: id(),
    user: () => p.manyToOne(UserEntity).deleteRule("cascade").index(),
    name: p.string().length(100),
    /** SHA-256 of the secret, hex; the secret itself is never stored. */
    keyHash: p.string().length(64).unique().hidden(),
    masked: p.string().length(32),
    /** `standard` or `session`. */
    kind: p.string().length(16),
    expiresAt: p.datetime().columnType("timestamptz").nullable(),
    revokedAt: p.datetime().columnType("timestamptz").nullable(),
    lastUsedAt: p.datetime().columnType("timestamptz").nullable(),
    createdAt: createdAt(),
    /** The key's own rate limits, beside its role's: null = none, 0 = every model call refused (uint32). */
    requestsPerMinute: p.bigint("number").nullable(),
    requestsPerDay: p.bigint("number").nullable(),
    tokensPerMinute: p.bigint("number").nullable(),
    tokensPerDay: p.bigint("number").nullable(),
  },
});
export type ApiKey = InferEntity<typeof ApiKeyEntity>;

export const accountEntities = [OrganizationEntity, RoleEntity, UserEntity, ApiKeyEntity];
