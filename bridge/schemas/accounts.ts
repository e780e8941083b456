import { KEY_STATES, PERMISSIONS } from "../mappers/accounts.js";
import { unixOrNull, unixTime } from "./common.js";

const nonEmpty = (max: number) => ({ type: "string", minLength: 1, maxLength: max }) as const;

const countOrNull = { type: ["integer", "null"], minimum: 0, maximum: 4294967295 } as const;

/** A key's own rate limits in a request: null or absent = none of that kind, 0 = refused. */
const keyLimitsBody = {
  type: ["object", "null"],
  additionalProperties: false,
  description:
    "The key's own rate limits, checked beside its role's on every model it is used on (each model apart): both " +
    "must allow a call, so they can only tighten. null or absent = no limit of that kind; 0 = every model call " +
    "with the key is refused (429).",
  properties: {
    requests_per_minute: countOrNull,
    requests_per_day: countOrNull,
    tokens_per_minute: countOrNull,
    tokens_per_day: countOrNull,
  },
} as const;

const keyLimitsJson = {
  type: "object",
  description: "The key's own rate limits (null = none of that kind).",
  properties: {
    requests_per_minute: { type: ["integer", "null"] },
    requests_per_day: { type: ["integer", "null"] },
    tokens_per_minute: { type: ["integer", "null"] },
    tokens_per_day: { type: ["integer", "null"] },
  },
  required: ["requests_per_minute", "requests_per_day", "tokens_per_minute", "tokens_per_day"],
} as const;

const limitUsage = {
  description: "null = unlimited.",
  anyOf: [
    { type: "null" },
    {
      type: "object",
      properties: {
        limit: { type: "integer", description: "The limit that binds first: the role's or the key's." },
        remaining: { type: ["integer", "null"], description: "Left now; null when it cannot be read." },
        reset_seconds: {
          type: ["integer", "null"],
          description: "Seconds until all that was counted in the window has left it (0: nothing counted).",
        },
        role_limit: { type: ["integer", "null"], description: "The role's limit (per user); null = none." },
        key_limit: { type: ["integer", "null"], description: "This key's own limit; null = none." },
      },
      required: ["limit", "remaining", "reset_seconds", "role_limit", "key_limit"],
    },
  ],
} as const;

const modelLimits = {
  type: "object",
  properties: {
    model: { type: "string" },
    requests_per_minute: limitUsage,
    requests_per_day: limitUsage,
    tokens_per_minute: limitUsage,
    tokens_per_day: limitUsage,
  },
  required: ["model", "requests_per_minute", "requests_per_day", "tokens_per_minute", "tokens_per_day"],
} as const;

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
    limits: keyLimitsJson,
  },
  required: [
    "object",
    "id",
    "name",
    "user",
    "kind",
    "masked_key",
    "expires",
    "revoked",
    "last_used",
    "created",
    "limits",
  ],
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
    limits: {
      type: "array",
      description:
        "Rate limits on every model the caller may use, as calls with this key are checked, and what remains of " +
        "each (empty with view=basic and for an expired user).",
      items: modelLimits,
    },
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
    "limits",
  ],
} as const;

export const meQuery = {
  type: "object",
  properties: {
    view: {
      type: "string",
      enum: ["basic", "full"],
      default: "full",
      description: "`basic` leaves out `limits` (cheaper, for services that only need to know who calls).",
    },
  },
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
    limits: keyLimitsBody,
  },
  required: ["name"],
} as const;

export const adminCreateKeyBody = {
  ...createKeyBody,
  properties: { ...createKeyBody.properties, user: { ...nonEmpty(64), description: "Owner's user id." } },
  required: ["name", "user"],
} as const;

export const updateKeyBody = {
  type: "object",
  additionalProperties: false,
  minProperties: 1,
  properties: {
    name: nonEmpty(100),
    limits: { ...keyLimitsBody, description: "Replaces the key's limits (every one of them); null removes them." },
  },
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
