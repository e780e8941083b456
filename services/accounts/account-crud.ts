import {
  type EntityManager,
  type FilterQuery,
  ForeignKeyConstraintViolationException,
  UniqueConstraintViolationException,
} from "@mikro-orm/core";
import type { MikroORM } from "@mikro-orm/postgresql";
import type { KeyLimits } from "../platform/context.js";
import { alreadyExists, failedPrecondition, invalidArgument } from "../platform/errors.js";
import type { Page } from "../platform/paging.js";
import type { KeyState, UserPatch } from "./account-types.js";
import {
  type ApiKey,
  ApiKeyEntity,
  type Organization,
  OrganizationEntity,
  type Role,
  RoleEntity,
  type User,
  UserEntity,
} from "./entities.js";

/**
 * The accounts' administrative persistence, over MikroORM: loaded by account-store.ts on the first call that needs
 * it, never by the serving path.
 */

const like = (s: string) => `%${s.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/**
 * Translates the constraint violations the schema enforces (unique names, foreign keys) into Connect errors;
 * the original stays as `cause`.
 */
async function guard<T>(what: string, fn: () => Promise<T>, fkMessage?: string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof UniqueConstraintViolationException) {
      const field = /\((\w+)\)=/.exec(err.message)?.[1] ?? "name";
      throw alreadyExists(
        `A ${what} with this ${field} already exists.`,
        `${what.toUpperCase()}_ALREADY_EXISTS`,
        field,
      );
    }
    if (err instanceof ForeignKeyConstraintViolationException) {
      if (fkMessage) throw failedPrecondition(fkMessage, `${what.toUpperCase()}_IN_USE`);
      throw invalidArgument(`A referenced resource does not exist.`, undefined, "REFERENCE_NOT_FOUND");
    }
    throw err;
  }
}

export type AccountCrud = ReturnType<typeof createAccountCrud>;

/** PostgreSQL persistence of accounts over the ORM; every call works on its own EntityManager fork. */
export function createAccountCrud(orm: MikroORM) {
  const em = (): EntityManager => orm.em.fork();

  async function countBy(column: "role_id" | "organization_id", ids: string[]): Promise<Map<string, number>> {
    if (ids.length === 0) return new Map();
    const rows = await em()
      .getConnection()
      .execute<{ id: string; n: string }[]>(
        `select ${column} as id, count(*) as n from app_user where ${column} in (${ids.map(() => "?").join(",")}) group by ${column}`,
        ids,
      );
    return new Map(rows.map((r: { id: string; n: string }) => [r.id, Number(r.n)]));
  }

  return {
    // Organizations

    async createOrganization(name: string): Promise<Organization> {
      return guard("organization", async () => {
        const e = em();
        const org = e.create(OrganizationEntity, { name });
        await e.flush();
        return org;
      });
    },
    async getOrganization(id: string): Promise<Organization | null> {
      return em().findOne(OrganizationEntity, { id });
    },
    async listOrganizations(page: Page, filter: { name?: string }): Promise<Organization[]> {
      const where: FilterQuery<Organization> = {};
      if (page.after) where.id = { $gt: page.after };
      if (filter.name) where.name = { $ilike: like(filter.name) };
      return em().find(OrganizationEntity, where, { orderBy: { id: "asc" }, limit: page.limit });
    },
    async updateOrganization(id: string, patch: { name?: string }): Promise<Organization | null> {
      return guard("organization", async () => {
        const e = em();
        const org = await e.findOne(OrganizationEntity, { id });
        if (!org) return null;
        if (patch.name !== undefined) org.name = patch.name;
        await e.flush();
        return org;
      });
    },
    async deleteOrganization(id: string): Promise<boolean> {
      const n = await guard(
        "organization",
        () => em().nativeDelete(OrganizationEntity, { id }),
        "This organization still has users; move or delete them first.",
      );
      return n > 0;
    },
    countUsersByOrganization: (ids: string[]) => countBy("organization_id", ids),

    // Roles

    async createRole(name: string, permissions: string[]): Promise<Role> {
      return guard("role", async () => {
        const e = em();
        const role = e.create(RoleEntity, { name, permissions });
        await e.flush();
        return role;
      });
    },
    async getRole(id: string): Promise<Role | null> {
      return em().findOne(RoleEntity, { id });
    },
    async getRoleByName(name: string): Promise<Role | null> {
      return em().findOne(RoleEntity, { name });
    },
    async listRoles(page: Page, filter: { name?: string }): Promise<Role[]> {
      const where: FilterQuery<Role> = {};
      if (page.after) where.id = { $gt: page.after };
      if (filter.name) where.name = { $ilike: like(filter.name) };
      return em().find(RoleEntity, where, { orderBy: { id: "asc" }, limit: page.limit });
    },
    async updateRole(id: string, patch: { name?: string; permissions?: string[] }): Promise<Role | null> {
      return guard("role", async () => {
        const e = em();
        const role = await e.findOne(RoleEntity, { id });
        if (!role) return null;
        if (patch.name !== undefined) role.name = patch.name;
        if (patch.permissions !== undefined) role.permissions = patch.permissions;
        await e.flush();
        return role;
      });
    },
    async deleteRole(id: string): Promise<boolean> {
      const n = await guard(
        "role",
        () => em().nativeDelete(RoleEntity, { id }),
        "This role is still held by users; give them another role first.",
      );
      return n > 0;
    },
    countUsersByRole: (ids: string[]) => countBy("role_id", ids),

    // Users

    async createUser(input: {
      email: string;
      name: string;
      passwordHash: string | null;
      roleId: string;
      organizationId: string | null;
      expiresAt: Date | null;
    }): Promise<User> {
      return guard("user", async () => {
        const e = em();
        const user = e.create(UserEntity, {
          email: input.email,
          name: input.name,
          passwordHash: input.passwordHash,
          role: e.getReference(RoleEntity, input.roleId),
          organization: input.organizationId ? e.getReference(OrganizationEntity, input.organizationId) : null,
          expiresAt: input.expiresAt,
        });
        await e.flush();
        return user;
      });
    },
    async getUser(id: string): Promise<User | null> {
      return em().findOne(UserEntity, { id });
    },
    async getUserByEmail(email: string): Promise<User | null> {
      return em().findOne(UserEntity, { email });
    },
    async listUsers(page: Page, filter: { email?: string; roleId?: string; organizationId?: string }): Promise<User[]> {
      const where: FilterQuery<User> = {};
      if (page.after) where.id = { $gt: page.after };
      if (filter.email) where.email = { $ilike: like(filter.email) };
      if (filter.roleId) where.role = filter.roleId;
      if (filter.organizationId) where.organization = filter.organizationId;
      return em().find(UserEntity, where, { orderBy: { id: "asc" }, limit: page.limit });
    },
    async updateUser(id: string, patch: UserPatch): Promise<User | null> {
      return guard("user", async () => {
        const e = em();
        const user = await e.findOne(UserEntity, { id });
        if (!user) return null;
        if (patch.email !== undefined) user.email = patch.email;
        if (patch.name !== undefined) user.name = patch.name;
        if (patch.passwordHash !== undefined) user.passwordHash = patch.passwordHash;
        if (patch.roleId !== undefined) user.role = e.getReference(RoleEntity, patch.roleId);
        if (patch.organizationId !== undefined) {
          user.organization = patch.organizationId ? e.getReference(OrganizationEntity, patch.organizationId) : null;
        }
        if (patch.expiresAt !== undefined) user.expiresAt = patch.expiresAt;
        await e.flush();
        return user;
      });
    },
    async deleteUser(id: string): Promise<boolean> {
      return (await em().nativeDelete(UserEntity, { id })) > 0;
    },

    // API keys

    async createKey(input: {
      userId: string;
      name: string;
      keyHash: string;
      masked: string;
      kind: "standard" | "session";
      expiresAt: Date | null;
      /** The key's own rate limits; absent or null = none. */
      limits?: KeyLimits | null;
    }): Promise<ApiKey> {
      return guard("api_key", async () => {
        const e = em();
        const key = e.create(ApiKeyEntity, {
          user: e.getReference(UserEntity, input.userId),
          name: input.name,
          keyHash: input.keyHash,
          masked: input.masked,
          kind: input.kind,
          expiresAt: input.expiresAt,
          revokedAt: null,
          lastUsedAt: null,
          ...limitColumns(input.limits ?? null),
        });
        await e.flush();
        return key;
      });
    },
    /** A key by id, restricted to `ownerId` when given (a key of someone else is then "not found"). */
    async getKey(id: string, ownerId: string | undefined): Promise<ApiKey | null> {
      return em().findOne(ApiKeyEntity, ownerId ? { id, user: ownerId } : { id });
    },
    async listKeys(page: Page, filter: { ownerId?: string; state?: KeyState }): Promise<ApiKey[]> {
      const where: FilterQuery<ApiKey> = {};
      if (page.after) where.id = { $gt: page.after };
      if (filter.ownerId) where.user = filter.ownerId;
      const now = new Date();
      if (filter.state === "revoked") where.revokedAt = { $ne: null };
      if (filter.state === "active") {
        where.revokedAt = null;
        where.$or = [{ expiresAt: null }, { expiresAt: { $gt: now } }];
      }
      if (filter.state === "expired") {
        where.revokedAt = null;
        where.expiresAt = { $lte: now };
      }
      return em().find(ApiKeyEntity, where, { orderBy: { id: "asc" }, limit: page.limit });
    },
    /**
     * Renames a key and/or replaces its limits (null: none); returns it with its hash, so that a limits change can
     * be pushed out of every auth cache.
     */
    async updateKey(
      id: string,
      ownerId: string | undefined,
      patch: { name?: string; limits?: KeyLimits | null },
    ): Promise<ApiKey | null> {
      const e = em();
      const key = await e.findOne(ApiKeyEntity, ownerId ? { id, user: ownerId } : { id });
      if (!key) return null;
      if (patch.name !== undefined) key.name = patch.name;
      if (patch.limits !== undefined) Object.assign(key, limitColumns(patch.limits));
      await e.flush();
      return key;
    },
    /** Revokes a key (idempotent: the first revocation time is kept); returns it with its hash for invalidation. */
    async revokeKey(id: string, ownerId: string | undefined): Promise<ApiKey | null> {
      const e = em();
      const key = await e.findOne(ApiKeyEntity, ownerId ? { id, user: ownerId } : { id });
      if (!key) return null;
      key.revokedAt ??= new Date();
      await e.flush();
      return key;
    },
    /** Hashes of a user's keys, to evict them from caches when the user changes or goes. */
    async keyHashesOfUser(userId: string): Promise<string[]> {
      const keys = await em().find(ApiKeyEntity, { user: userId }, { fields: ["keyHash"] });
      return keys.map((k) => k.keyHash);
    },
    async findKeyByHash(keyHash: string): Promise<ApiKey | null> {
      return em().findOne(ApiKeyEntity, { keyHash });
    },
  };
}

/** The limit columns of a key: every one null when it has none. */
function limitColumns(l: KeyLimits | null): KeyLimits {
  return {
    requestsPerMinute: l?.requestsPerMinute ?? null,
    requestsPerDay: l?.requestsPerDay ?? null,
    tokensPerMinute: l?.tokensPerMinute ?? null,
    tokensPerDay: l?.tokensPerDay ?? null,
  };
}
