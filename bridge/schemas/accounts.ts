import { KEY_STATES, PERMISSIONS } from "../mappers/accounts.js";
import { unixOrNull, unixTime } from "./common.js";

const nonEmpty = (max: number) => ({ type: "string", minLength: 1, maxLength: max }) as const;

export const userSchema = {
  $id: "User",
  type: "object",
  properties: {
    object: { type: "string", enum: ["user"] },
    id: { type: "string" },
    email: { type: "string" },
    name: { type: "string" },
    role: { type: "string", description: "Role id." },
    organization: { type: ["string", "null"], description: "Organization id." },
    expires: unixOrNull,
    has_password: { type: "boolean" },
    created: unixTime,
    updated: unixTime,
  },
  required: ["object", "id", "email", "name", "role", "organization", "expires", "has_password", "created", "updated"],
} as const;

export const roleSchema = {
  $id: "Role",
  type: "object",
  properties: {
    object: { type: "string", enum: ["role"] },
    id: { type: "string" },
    name: { type: "string" },
    permissions: { type: "array", items: { type: "string", enum: PERMISSIONS } },
    users: { type: "integer", description: "Number of users holding the role." },
    created: unixTime,
    updated: unixTime,
  },
  required: ["object", "id", "name", "permissions", "users", "created", "updated"],
} as const;

export const organizationSchema = {
  $id: "Organization",
  type: "object",
  properties: {
    object: { type: "string", enum: ["organization"] },
    id: { type: "string" },
    name: { type: "string" },
    users: { type: "integer" },
    created: unixTime,
    updated: unixTime,
  },
  required: ["object", "id", "name", "users", "created", "updated"],
} as const;

export const apiKeySchema = {
  $id: "ApiKey",
  type: "object",
  properties: {
    object: { type: "string", enum: ["api_key"] },
    id: { type: "string" },
    name: { type: "string" },
    user: { type: "string", description: "Owner's user id." },
    kind: { type: "string", enum: ["standard", "session"] },
    masked_key: { type: "string" },
    key: { type: "string", description: "The full key; only in the response that creates it." },
    expires: unixOrNull,
    revoked: unixOrNull,
    last_used: unixOrNull,
    created: unixTime,
  },
  required: ["object", "id", "name", "user", "kind", "masked_key", "expires", "revoked", "last_used", "created"],
} as const;

export const meSchema = {
  $id: "Me",
  type: "object",
  properties: {
    object: { type: "string", enum: ["me"] },
    id: { type: "string" },
    email: { type: "string" },
    name: { type: "string" },
    organization: {
      anyOf: [
        { type: "null" },
        { type: "object", properties: { id: { type: "string" }, name: { type: "string" } }, required: ["id", "name"] },
      ],
    },
    role: {
      anyOf: [
        { type: "null" },
        { type: "object", properties: { id: { type: "string" }, name: { type: "string" } }, required: ["id", "name"] },
      ],
    },
    permissions: { type: "array", items: { type: "string" } },
    expires: unixOrNull,
    expired: { type: "boolean", description: "An expired user can only read this profile." },
    key_id: { type: "string", description: "The key that authenticated this request." },
    created: unixTime,
  },
  required: [
    "object",
    "id",
    "email",
    "name",
    "organization",
    "role",
    "permissions",
    "expires",
    "expired",
    "key_id",
    "created",
  ],
} as const;

export const createUserBody = {
  type: "object",
  additionalProperties: false,
  properties: {
    email: nonEmpty(320),
    name: nonEmpty(200),
    password: { type: "string", minLength: 1, maxLength: 256 },
    role: nonEmpty(64),
    organization: { type: ["string", "null"], maxLength: 64 },
    expires: unixOrNull,
  },
  required: ["email", "role"],
} as const;

export const updateUserBody = {
  type: "object",
  additionalProperties: false,
  minProperties: 1,
  properties: {
    email: nonEmpty(320),
    name: nonEmpty(200),
    password: { type: "string", minLength: 1, maxLength: 256 },
    role: nonEmpty(64),
    organization: { type: ["string", "null"], maxLength: 64, description: "null removes the organization." },
    expires: { ...unixOrNull, description: "null removes the expiry." },
  },
} as const;

export const userListQuery = {
  email: { type: "string", maxLength: 320, description: "Substring of the e-mail." },
  role: { type: "string", maxLength: 64 },
  organization: { type: "string", maxLength: 64 },
} as const;

export const roleBody = {
  type: "object",
  additionalProperties: false,
  properties: {
    name: nonEmpty(100),
    permissions: { type: "array", maxItems: 16, items: { type: "string", enum: PERMISSIONS } },
  },
} as const;

export const organizationBody = {
  type: "object",
  additionalProperties: false,
  properties: { name: nonEmpty(200) },
  required: ["name"],
} as const;

export const createKeyBody = {
  type: "object",
  additionalProperties: false,
  properties: {
    name: nonEmpty(100),
    expires: { ...unixOrNull, description: "Unix seconds; null or absent = the maximum lifetime, or never." },
  },
  required: ["name"],
} as const;

export const adminCreateKeyBody = {
  ...createKeyBody,
  properties: { ...createKeyBody.properties, user: { ...nonEmpty(64), description: "Owner's user id." } },
  required: ["name", "user"],
} as const;

export const renameKeyBody = {
  type: "object",
  additionalProperties: false,
  properties: { name: nonEmpty(100) },
  required: ["name"],
} as const;

export const keyListQuery = {
  state: { type: "string", enum: KEY_STATES },
} as const;

export const updateMeBody = {
  type: "object",
  additionalProperties: false,
  minProperties: 1,
  properties: {
    name: nonEmpty(200),
    password: { type: "string", minLength: 1, maxLength: 256 },
    current_password: { type: "string", maxLength: 256 },
  },
} as const;

export const loginBody = {
  type: "object",
  additionalProperties: false,
  properties: { email: nonEmpty(320), password: { type: "string", minLength: 1, maxLength: 256 } },
  required: ["email", "password"],
} as const;
