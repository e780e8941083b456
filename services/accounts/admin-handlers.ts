import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  type AccountService,
  CreateUserResponseSchema,
  DeleteUserResponseSchema,
  GetUserResponseSchema,
  ListUsersResponseSchema,
  UpdateUserResponseSchema,
} from "../../gen/passerelle/accounts/v1/account_service_pb.js";
import { invalidArgument, notFound } from "../platform/errors.js";
import { decodePageToken, pageSize, paginate } from "../platform/paging.js";
import type { UserPatch } from "./account-store.js";
import type { AccountDeps } from "./deps.js";
import { toUserMsg } from "./mappers.js";
import { hashPassword } from "./secrets.js";
import {
  lookupId,
  principalOf,
  requireAdmin,
  validEmail,
  validFilter,
  validName,
  validPassword,
  validRef,
} from "./validation.js";

type UserHandlers = Pick<
  ServiceImpl<typeof AccountService>,
  "createUser" | "getUser" | "listUsers" | "updateUser" | "deleteUser"
>;

export function admin(ctx: HandlerContext): void {
  requireAdmin(principalOf(ctx));
}

/** Admin CRUD of users. Changes that affect authentication evict the user's keys from every process's cache. */
export function createUserHandlers(deps: AccountDeps): UserHandlers {
  const { store } = deps;
  const now = deps.now ?? (() => new Date());

  async function requireRole(id: string, param: string) {
    if (!(await store.getRole(validRef(id, param))))
      throw invalidArgument(`No role with id '${id}'.`, param, "ROLE_NOT_FOUND");
  }
  async function requireOrganization(id: string, param: string) {
    if (!(await store.getOrganization(validRef(id, param)))) {
      throw invalidArgument(`No organization with id '${id}'.`, param, "ORGANIZATION_NOT_FOUND");
    }
  }

  return {
    async createUser(req, ctx) {
      admin(ctx);
      const email = validEmail(req.email);
      const name = req.name ? validName(req.name, "name", 200) : (email.split("@")[0] ?? email);
      if (!req.roleId) throw invalidArgument("'role_id' is required.", "role_id");
      await requireRole(req.roleId, "role_id");
      if (req.organizationId) await requireOrganization(req.organizationId, "organization_id");
      let expiresAt: Date | null = null;
      if (req.expireTime) {
        expiresAt = timestampDate(req.expireTime);
        if (expiresAt <= now()) throw invalidArgument("'expire_time' must be in the future.", "expire_time");
      }
      const passwordHash = req.password ? await hashPassword(validPassword(req.password)) : null;
      const user = await store.createUser({
        email,
        name,
        passwordHash,
        roleId: req.roleId,
        organizationId: req.organizationId || null,
        expiresAt,
      });
      return create(CreateUserResponseSchema, { user: toUserMsg(user) });
    },

    async getUser(req, ctx) {
      admin(ctx);
      const id = lookupId(req.id);
      const user = id ? await store.getUser(id) : null;
      if (!user) throw notFound("user", req.id);
      return create(GetUserResponseSchema, { user: toUserMsg(user) });
    },

    async listUsers(req, ctx) {
      admin(ctx);
      const size = pageSize(req.pageSize);
      const rows = await store.listUsers(
        { after: decodePageToken(req.pageToken), limit: size + 1 },
        {
          // A substring of an address: any text, but one the database can compare (no NUL, no control character).
          email: req.email ? validFilter(req.email, "email", 320) : undefined,
          roleId: req.roleId ? validRef(req.roleId, "role_id") : undefined,
          organizationId: req.organizationId ? validRef(req.organizationId, "organization_id") : undefined,
        },
      );
      const page = paginate(rows, size);
      return create(ListUsersResponseSchema, { users: page.items.map(toUserMsg), nextPageToken: page.nextPageToken });
    },

    async updateUser(req, ctx) {
      admin(ctx);
      const id = lookupId(req.id);
      if (!id || !(await store.getUser(id))) throw notFound("user", req.id);
      const patch: UserPatch = {};
      if (req.email !== undefined) patch.email = validEmail(req.email);
      if (req.name !== undefined) patch.name = validName(req.name, "name", 200);
      if (req.password !== undefined) patch.passwordHash = await hashPassword(validPassword(req.password));
      if (req.roleId !== undefined) {
        await requireRole(req.roleId, "role_id");
        patch.roleId = req.roleId;
      }
      if (req.organizationId !== undefined) {
        if (req.organizationId) await requireOrganization(req.organizationId, "organization_id");
        patch.organizationId = req.organizationId || null;
      }
      if (req.expireTime && req.clearExpireTime) {
        throw invalidArgument("Set 'expire_time' or 'clear_expire_time', not both.", "clear_expire_time");
      }
      if (req.expireTime) patch.expiresAt = timestampDate(req.expireTime);
      if (req.clearExpireTime) patch.expiresAt = null;
      const user = await store.updateUser(id, patch);
      if (!user) throw notFound("user", req.id);
      await deps.authenticator.invalidateKeys(await store.keyHashesOfUser(id));
      return create(UpdateUserResponseSchema, { user: toUserMsg(user) });
    },

    async deleteUser(req, ctx) {
      admin(ctx);
      const id = lookupId(req.id);
      if (!id) throw notFound("user", req.id);
      if (id === principalOf(ctx).userId) {
        throw invalidArgument("You cannot delete your own account.", "id", "CANNOT_DELETE_SELF");
      }
      const hashes = await store.keyHashesOfUser(id);
      if (!(await store.deleteUser(id))) throw notFound("user", req.id);
      await deps.authenticator.invalidateKeys(hashes);
      return create(DeleteUserResponseSchema, {});
    },
  };
}
