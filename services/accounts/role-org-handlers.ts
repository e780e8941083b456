import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  type AccountService,
  CreateOrganizationResponseSchema,
  CreateRoleResponseSchema,
  DeleteOrganizationResponseSchema,
  DeleteRoleResponseSchema,
  GetOrganizationResponseSchema,
  GetRoleResponseSchema,
  ListOrganizationsResponseSchema,
  ListRolesResponseSchema,
  UpdateOrganizationResponseSchema,
  UpdateRoleResponseSchema,
} from "../../gen/passerelle/accounts/v1/account_service_pb.js";
import { Permission } from "../../gen/passerelle/accounts/v1/resources_pb.js";
import { invalidArgument, notFound } from "../platform/errors.js";
import { decodePageToken, pageSize, paginate } from "../platform/paging.js";
import { admin } from "./admin-handlers.js";
import type { AccountDeps } from "./deps.js";
import { PERMISSION_NAMES, toOrganizationMsg, toRoleMsg } from "./mappers.js";
import { lookupId, validFilter, validName } from "./validation.js";

type RoleOrgHandlers = Pick<
  ServiceImpl<typeof AccountService>,
  | "createRole"
  | "getRole"
  | "listRoles"
  | "updateRole"
  | "deleteRole"
  | "createOrganization"
  | "getOrganization"
  | "listOrganizations"
  | "updateOrganization"
  | "deleteOrganization"
>;

function permissionNames(values: Permission[]): string[] {
  const names = new Set<string>();
  for (const v of values) {
    const name = PERMISSION_NAMES.get(v);
    if (!name) throw invalidArgument(`Unknown permission value ${v}.`, "permissions", "UNKNOWN_PERMISSION");
    names.add(name);
  }
  return [...names].sort();
}

export function createRoleOrgHandlers(deps: AccountDeps): RoleOrgHandlers {
  const { store } = deps;

  return {
    async createRole(req, ctx) {
      admin(ctx);
      const role = await store.createRole(validName(req.name, "name", 100), permissionNames(req.permissions));
      return create(CreateRoleResponseSchema, { role: toRoleMsg(role, 0) });
    },
    async getRole(req, ctx) {
      admin(ctx);
      const id = lookupId(req.id);
      const role = id ? await store.getRole(id) : null;
      if (!role) throw notFound("role", req.id);
      const counts = await store.countUsersByRole([role.id]);
      return create(GetRoleResponseSchema, { role: toRoleMsg(role, counts.get(role.id) ?? 0) });
    },
    async listRoles(req, ctx) {
      admin(ctx);
      const size = pageSize(req.pageSize);
      const rows = await store.listRoles(
        { after: decodePageToken(req.pageToken), limit: size + 1 },
        { name: req.name ? validFilter(req.name, "name", 100) : undefined },
      );
      const page = paginate(rows, size);
      const counts = await store.countUsersByRole(page.items.map((r) => r.id));
      return create(ListRolesResponseSchema, {
        roles: page.items.map((r) => toRoleMsg(r, counts.get(r.id) ?? 0)),
        nextPageToken: page.nextPageToken,
      });
    },
    async updateRole(req, ctx) {
      admin(ctx);
      const id = lookupId(req.id);
      const role = id
        ? await store.updateRole(id, {
            name: req.name === undefined ? undefined : validName(req.name, "name", 100),
            permissions: req.permissions ? permissionNames(req.permissions.permissions) : undefined,
          })
        : null;
      if (!role) throw notFound("role", req.id);
      // Permissions are cached with each key: make the change effective everywhere now.
      await deps.authenticator.invalidateAll();
      const counts = await store.countUsersByRole([role.id]);
      return create(UpdateRoleResponseSchema, { role: toRoleMsg(role, counts.get(role.id) ?? 0) });
    },
    async deleteRole(req, ctx) {
      admin(ctx);
      const id = lookupId(req.id);
      if (!id || !(await store.deleteRole(id))) throw notFound("role", req.id);
      return create(DeleteRoleResponseSchema, {});
    },

    async createOrganization(req, ctx) {
      admin(ctx);
      const org = await store.createOrganization(validName(req.name, "name", 200));
      return create(CreateOrganizationResponseSchema, { organization: toOrganizationMsg(org, 0) });
    },
    async getOrganization(req, ctx) {
      admin(ctx);
      const id = lookupId(req.id);
      const org = id ? await store.getOrganization(id) : null;
      if (!org) throw notFound("organization", req.id);
      const counts = await store.countUsersByOrganization([org.id]);
      return create(GetOrganizationResponseSchema, { organization: toOrganizationMsg(org, counts.get(org.id) ?? 0) });
    },
    async listOrganizations(req, ctx) {
      admin(ctx);
      const size = pageSize(req.pageSize);
      const rows = await store.listOrganizations(
        { after: decodePageToken(req.pageToken), limit: size + 1 },
        { name: req.name ? validFilter(req.name, "name", 200) : undefined },
      );
      const page = paginate(rows, size);
      const counts = await store.countUsersByOrganization(page.items.map((o) => o.id));
      return create(ListOrganizationsResponseSchema, {
        organizations: page.items.map((o) => toOrganizationMsg(o, counts.get(o.id) ?? 0)),
        nextPageToken: page.nextPageToken,
      });
    },
    async updateOrganization(req, ctx) {
      admin(ctx);
      const id = lookupId(req.id);
      const org = id
        ? await store.updateOrganization(id, {
            name: req.name === undefined ? undefined : validName(req.name, "name", 200),
          })
        : null;
      if (!org) throw notFound("organization", req.id);
      const counts = await store.countUsersByOrganization([org.id]);
      return create(UpdateOrganizationResponseSchema, {
        organization: toOrganizationMsg(org, counts.get(org.id) ?? 0),
      });
    },
    async deleteOrganization(req, ctx) {
      admin(ctx);
      const id = lookupId(req.id);
      if (!id || !(await store.deleteOrganization(id))) throw notFound("organization", req.id);
      return create(DeleteOrganizationResponseSchema, {});
    },
  };
}

export const ALL_PERMISSIONS = [Permission.ADMIN, Permission.CREATE_PUBLIC_COLLECTION, Permission.READ_METRICS];
