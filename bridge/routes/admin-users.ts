import { create } from "@bufbuild/protobuf";
import type { FastifyInstance } from "fastify";
import { UserSchema } from "../../gen/passerelle/accounts/v1/resources_pb.js";
import { listJson, timestampFromUnix, userJson } from "../mappers/accounts.js";
import { type Clients, callOptions } from "../rpc.js";
import { createUserBody, updateUserBody, userListQuery } from "../schemas/accounts.js";
import { deletedSchema, errorResponses, idParams, listSchema, pagingQuery } from "../schemas/common.js";

type CreateBody = {
  email: string;
  name?: string;
  password?: string;
  role: string;
  organization?: string | null;
  expires?: number | null;
};
type UpdateBody = Partial<CreateBody>;
type ListQuery = { limit: number; after?: string; email?: string; role?: string; organization?: string };

const tags = ["admin"];
const security = [{ bearer: [] }];

/** `/v1/admin/users`: admin CRUD of users. */
export function adminUserRoutes(app: FastifyInstance, clients: Clients): void {
  const userOf = (res: { user?: Parameters<typeof userJson>[0] }) => userJson(res.user ?? create(UserSchema));

  app.post<{ Body: CreateBody }>(
    "/v1/admin/users",
    {
      schema: {
        tags,
        security,
        summary: "Creates a user.",
        body: createUserBody,
        response: { 201: { $ref: "User#" }, ...errorResponses },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const res = await clients.accounts.createUser(
        {
          email: b.email,
          name: b.name ?? "",
          password: b.password ?? "",
          roleId: b.role,
          organizationId: b.organization ?? "",
          expireTime: b.expires == null ? undefined : timestampFromUnix(b.expires),
        },
        callOptions(req, reply),
      );
      reply.code(201);
      return userOf(res);
    },
  );

  app.get<{ Querystring: ListQuery }>(
    "/v1/admin/users",
    {
      schema: {
        tags,
        security,
        summary: "Lists users, oldest first, with filters.",
        querystring: { type: "object", properties: { ...pagingQuery, ...userListQuery } },
        response: { 200: listSchema("User"), ...errorResponses },
      },
    },
    async (req, reply) => {
      const q = req.query;
      const res = await clients.accounts.listUsers(
        {
          pageSize: q.limit,
          pageToken: q.after ?? "",
          email: q.email ?? "",
          roleId: q.role ?? "",
          organizationId: q.organization ?? "",
        },
        callOptions(req, reply),
      );
      return listJson(res.users.map(userJson), res.nextPageToken);
    },
  );

  const one = { tags, security, params: idParams, response: { 200: { $ref: "User#" }, ...errorResponses } };

  app.get<{ Params: { id: string } }>(
    "/v1/admin/users/:id",
    { schema: { ...one, summary: "Reads a user." } },
    async (req, reply) => userOf(await clients.accounts.getUser({ id: req.params.id }, callOptions(req, reply))),
  );

  app.patch<{ Params: { id: string }; Body: UpdateBody }>(
    "/v1/admin/users/:id",
    {
      schema: {
        ...one,
        summary: "Updates the fields given; null clears organization or expires.",
        body: updateUserBody,
      },
    },
    async (req, reply) => {
      const b = req.body;
      const res = await clients.accounts.updateUser(
        {
          id: req.params.id,
          email: b.email,
          name: b.name,
          password: b.password,
          roleId: b.role,
          organizationId: b.organization === undefined ? undefined : (b.organization ?? ""),
          expireTime: b.expires == null ? undefined : timestampFromUnix(b.expires),
          clearExpireTime: b.expires === null,
        },
        callOptions(req, reply),
      );
      return userOf(res);
    },
  );

  app.delete<{ Params: { id: string } }>(
    "/v1/admin/users/:id",
    {
      schema: {
        tags,
        security,
        summary: "Deletes a user and their keys.",
        params: idParams,
        response: { 200: deletedSchema("user"), ...errorResponses },
      },
    },
    async (req, reply) => {
      await clients.accounts.deleteUser({ id: req.params.id }, callOptions(req, reply));
      return { id: req.params.id, object: "user.deleted", deleted: true };
    },
  );
}
