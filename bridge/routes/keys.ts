import { create } from "@bufbuild/protobuf";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ApiKeySchema } from "../../gen/passerelle/accounts/v1/resources_pb.js";
import {
  apiKeyJson,
  type KeyLimitsJson,
  type KeyStateName,
  keyLimitsToProto,
  keyStateToProto,
  listJson,
  timestampFromUnix,
} from "../mappers/accounts.js";
import { type Clients, callOptions } from "../rpc.js";
import { adminCreateKeyBody, createKeyBody, keyListQuery, updateKeyBody } from "../schemas/accounts.js";
import { errorResponses, idParams, listSchema, pagingQuery } from "../schemas/common.js";

type ListQuery = { limit: number; after?: string; state?: KeyStateName; user?: string };
type CreateBody = { name: string; expires?: number | null; user?: string; limits?: KeyLimitsJson | null };
type UpdateBody = { name?: string; limits?: KeyLimitsJson | null };

/**
 * API keys: the caller's own under `/v1/me/keys`, anyone's under `/v1/admin/keys` (admin). The two differ only in
 * the owner scope sent to the RPC: the caller's keys (user_id empty) or any user's (user_id `-` or an id).
 */
export function keyRoutes(app: FastifyInstance, clients: Clients): void {
  for (const scope of ["me", "admin"] as const) {
    const base = `/v1/${scope}/keys`;
    const tags = [scope === "me" ? "me" : "admin"];
    const security = [{ bearer: [] }];
    const owner = scope === "me" ? "" : "-";

    app.post<{ Body: CreateBody }>(
      base,
      {
        schema: {
          tags,
          security,
          summary:
            scope === "me" ? "Creates a key for the caller; the key is shown once." : "Creates a key for a user.",
          body: scope === "me" ? createKeyBody : adminCreateKeyBody,
          response: { 201: { $ref: "ApiKey#" }, ...errorResponses },
        },
      },
      async (req, reply) => {
        const res = await clients.accounts.createApiKey(
          {
            userId: req.body.user ?? "",
            name: req.body.name,
            expireTime: req.body.expires == null ? undefined : timestampFromUnix(req.body.expires),
            // null and absent alike: no limits.
            limits: keyLimitsToProto(req.body.limits ?? undefined),
          },
          callOptions(req, reply),
        );
        reply.code(201);
        return apiKeyJson(res.apiKey ?? create(ApiKeySchema), res.secret);
      },
    );

    app.get<{ Querystring: ListQuery }>(
      base,
      {
        schema: {
          tags,
          security,
          summary: "Lists keys, masked, oldest first.",
          querystring: {
            type: "object",
            properties: {
              ...pagingQuery,
              ...keyListQuery,
              ...(scope === "admin" ? { user: { type: "string", maxLength: 64, description: "Owner's id." } } : {}),
            },
          },
          response: { 200: listSchema("ApiKey"), ...errorResponses },
        },
      },
      async (req, reply) => {
        const res = await clients.accounts.listApiKeys(
          {
            userId: scope === "admin" && req.query.user ? req.query.user : owner,
            pageSize: req.query.limit,
            pageToken: req.query.after ?? "",
            state: keyStateToProto(req.query.state),
          },
          callOptions(req, reply),
        );
        return listJson(
          res.apiKeys.map((k) => apiKeyJson(k)),
          res.nextPageToken,
        );
      },
    );

    const one = { tags, security, params: idParams, response: { 200: { $ref: "ApiKey#" }, ...errorResponses } };
    const keyOf = (res: { apiKey?: Parameters<typeof apiKeyJson>[0] }) =>
      apiKeyJson(res.apiKey ?? create(ApiKeySchema));
    const scoped = (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => ({
      id: req.params.id,
      userId: owner,
      opts: callOptions(req, reply),
    });

    app.get<{ Params: { id: string } }>(
      `${base}/:id`,
      { schema: { ...one, summary: "Reads a key, masked." } },
      async (req, reply) => {
        const { opts, ...ids } = scoped(req, reply);
        return keyOf(await clients.accounts.getApiKey(ids, opts));
      },
    );

    app.patch<{ Params: { id: string }; Body: UpdateBody }>(
      `${base}/:id`,
      {
        schema: {
          ...one,
          summary:
            "Renames a key and/or replaces its own rate limits (null removes them); a limits change applies at once.",
          body: updateKeyBody,
        },
      },
      async (req, reply) => {
        const { opts, ...ids } = scoped(req, reply);
        const update = { ...ids, name: req.body.name, limits: keyLimitsToProto(req.body.limits) };
        return keyOf(await clients.accounts.updateApiKey(update, opts));
      },
    );

    app.delete<{ Params: { id: string } }>(
      `${base}/:id`,
      { schema: { ...one, summary: "Revokes a key, at once, on every process. Returns the revoked key." } },
      async (req, reply) => {
        const { opts, ...ids } = scoped(req, reply);
        return keyOf(await clients.accounts.revokeApiKey(ids, opts));
      },
    );
  }
}
