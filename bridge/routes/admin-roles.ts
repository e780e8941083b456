import { create } from "@bufbuild/protobuf";
import type { FastifyInstance } from "fastify";
import { OrganizationSchema, RoleSchema } from "../../gen/passerelle/accounts/v1/resources_pb.js";
import {
  listJson,
  organizationJson,
  type PermissionName,
  permissionListToProto,
  permissionsToProto,
  roleJson,
} from "../mappers/accounts.js";
import { type Clients, callOptions } from "../rpc.js";
import { organizationBody, roleBody } from "../schemas/accounts.js";
import { deletedSchema, errorResponses, idParams, listSchema, pagingQuery } from "../schemas/common.js";

type RoleBody = { name?: string; permissions?: PermissionName[] };
type ListQuery = { limit: number; after?: string; name?: string };

const tags = ["admin"];
const security = [{ bearer: [] }];
const nameQuery = {
  type: "object",
  properties: { ...pagingQuery, name: { type: "string", maxLength: 200, description: "Substring of the name." } },
} as const;

/** `/v1/admin/roles` and `/v1/admin/organizations`: admin CRUD. Deleting one that still has users is 409. */
export function adminRoleRoutes(app: FastifyInstance, clients: Clients): void {
  const a = clients.accounts;
  const roleOf = (res: { role?: Parameters<typeof roleJson>[0] }) => roleJson(res.role ?? create(RoleSchema));
  const orgOf = (res: { organization?: Parameters<typeof organizationJson>[0] }) =>
    organizationJson(res.organization ?? create(OrganizationSchema));
  const one = (ref: string) => ({
    tags,
    security,
    params: idParams,
    response: { 200: { $ref: `${ref}#` }, ...errorResponses },
  });
  const created = (ref: string) => ({ tags, security, response: { 201: { $ref: `${ref}#` }, ...errorResponses } });
  const deleted = (object: string) => ({
    tags,
    security,
    params: idParams,
    response: { 200: deletedSchema(object), ...errorResponses },
  });

  app.post<{ Body: RoleBody }>(
    "/v1/admin/roles",
    { schema: { ...created("Role"), summary: "Creates a role.", body: { ...roleBody, required: ["name"] } } },
    async (req, reply) => {
      const res = await a.createRole(
        { name: req.body.name ?? "", permissions: permissionsToProto(req.body.permissions ?? []) },
        callOptions(req, reply),
      );
      reply.code(201);
      return roleOf(res);
    },
  );
  app.get<{ Querystring: ListQuery }>(
    "/v1/admin/roles",
    {
      schema: {
        tags,
        security,
        summary: "Lists roles.",
        querystring: nameQuery,
        response: { 200: listSchema("Role"), ...errorResponses },
      },
    },
    async (req, reply) => {
      const res = await a.listRoles(
        { pageSize: req.query.limit, pageToken: req.query.after ?? "", name: req.query.name ?? "" },
        callOptions(req, reply),
      );
      return listJson(res.roles.map(roleJson), res.nextPageToken);
    },
  );
  app.get<{ Params: { id: string } }>(
    "/v1/admin/roles/:id",
    { schema: { ...one("Role"), summary: "Reads a role." } },
    async (req, reply) => roleOf(await a.getRole({ id: req.params.id }, callOptions(req, reply))),
  );
  app.patch<{ Params: { id: string }; Body: RoleBody }>(
    "/v1/admin/roles/:id",
    {
      schema: {
        ...one("Role"),
        summary: "Renames a role or replaces its permissions; effective at once.",
        body: { ...roleBody, minProperties: 1 },
      },
    },
    async (req, reply) => {
      const res = await a.updateRole(
        {
          id: req.params.id,
          name: req.body.name,
          permissions: req.body.permissions ? permissionListToProto(req.body.permissions) : undefined,
        },
        callOptions(req, reply),
      );
      return roleOf(res);
    },
  );
  app.delete<{ Params: { id: string } }>(
    "/v1/admin/roles/:id",
    { schema: { ...deleted("role"), summary: "Deletes a role; 409 while users hold it." } },
    async (req, reply) => {
      await a.deleteRole({ id: req.params.id }, callOptions(req, reply));
      return { id: req.params.id, object: "role.deleted", deleted: true };
    },
  );

  app.post<{ Body: { name: string } }>(
    "/v1/admin/organizations",
    { schema: { ...created("Organization"), summary: "Creates an organization.", body: organizationBody } },
    async (req, reply) => {
      const res = await a.createOrganization({ name: req.body.name }, callOptions(req, reply));
      reply.code(201);
      return orgOf(res);
    },
  );
  app.get<{ Querystring: ListQuery }>(
    "/v1/admin/organizations",
    {
      schema: {
        tags,
        security,
        summary: "Lists organizations.",
        querystring: nameQuery,
        response: { 200: listSchema("Organization"), ...errorResponses },
      },
    },
    async (req, reply) => {
      const res = await a.listOrganizations(
        { pageSize: req.query.limit, pageToken: req.query.after ?? "", name: req.query.name ?? "" },
        callOptions(req, reply),
      );
      return listJson(res.organizations.map(organizationJson), res.nextPageToken);
    },
  );
  app.get<{ Params: { id: string } }>(
    "/v1/admin/organizations/:id",
    { schema: { ...one("Organization"), summary: "Reads an organization." } },
    async (req, reply) => orgOf(await a.getOrganization({ id: req.params.id }, callOptions(req, reply))),
  );
  app.patch<{ Params: { id: string }; Body: { name: string } }>(
    "/v1/admin/organizations/:id",
    { schema: { ...one("Organization"), summary: "Renames an organization.", body: organizationBody } },
    async (req, reply) =>
      orgOf(await a.updateOrganization({ id: req.params.id, name: req.body.name }, callOptions(req, reply))),
  );
  app.delete<{ Params: { id: string } }>(
    "/v1/admin/organizations/:id",
    { schema: { ...deleted("organization"), summary: "Deletes an organization; 409 while it has members." } },
    async (req, reply) => {
      await a.deleteOrganization({ id: req.params.id }, callOptions(req, reply));
      return { id: req.params.id, object: "organization.deleted", deleted: true };
    },
  );
}
