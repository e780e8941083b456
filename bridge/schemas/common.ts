/** JSON schemas shared by REST routes; they validate requests and document the API in /openapi.json. */

export const errorSchema = {
  $id: "Error",
  type: "object",
  description: "OpenAI's error shape.",
  properties: {
    error: {
      type: "object",
      properties: {
        message: { type: "string" },
        type: { type: "string" },
        param: { type: ["string", "null"] },
        code: { type: ["string", "null"] },
      },
      required: ["message", "type", "param", "code"],
    },
  },
  required: ["error"],
} as const;

export const errorResponses = {
  400: { $ref: "Error#" },
  401: { $ref: "Error#" },
  403: { $ref: "Error#" },
  404: { $ref: "Error#" },
  409: { $ref: "Error#" },
  429: { $ref: "Error#" },
  500: { $ref: "Error#" },
} as const;

export const idParams = {
  type: "object",
  properties: { id: { type: "string", maxLength: 64 } },
  required: ["id"],
} as const;

/** `limit` and `after`, as in OpenAI's list endpoints. */
export const pagingQuery = {
  limit: { type: "integer", minimum: 1, maximum: 100, default: 20, description: "Page size (1–100)." },
  after: { type: "string", maxLength: 64, description: "Cursor: the `last_id` of the previous page." },
} as const;

export function listSchema(itemRef: string) {
  return {
    type: "object",
    properties: {
      object: { type: "string", enum: ["list"] },
      data: { type: "array", items: { $ref: `${itemRef}#` } },
      first_id: { type: ["string", "null"] },
      last_id: { type: ["string", "null"] },
      has_more: { type: "boolean" },
    },
    required: ["object", "data", "first_id", "last_id", "has_more"],
  } as const;
}

export function deletedSchema(object: string) {
  return {
    type: "object",
    properties: {
      id: { type: "string" },
      object: { type: "string", enum: [`${object}.deleted`] },
      deleted: { type: "boolean" },
    },
    required: ["id", "object", "deleted"],
  } as const;
}

/** Unix seconds, or null for "never". */
export const unixOrNull = { type: ["integer", "null"], minimum: 0, maximum: 253402300799 } as const;
export const unixTime = { type: "integer", minimum: 0 } as const;
