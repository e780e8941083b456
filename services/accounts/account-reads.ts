import type pg from "pg";
import type { KeyLimits } from "../platform/context.js";
import { countOrNull, dateOrNull } from "../platform/db/row-values.js";

/**
 * The two reads on hot paths (every key verification, every GET /v1/me), as one plain SQL query each: MikroORM's
 * hydration measured about 4× the cost of the query itself.
 */

/** What the auth path needs about a key, in one indexed query. */
export interface KeyPrincipalRow {
  keyId: string;
  keyExpiresAt: Date | null;
  keyRevokedAt: Date | null;
  userId: string;
  email: string;
  name: string;
  userExpiresAt: Date | null;
  organizationId: string | null;
  roleId: string;
  roleName: string;
  permissions: string[];
  /** The key's own rate limits; null when it has none (all four null). */
  keyLimits: KeyLimits | null;
}

/** A user as GET /v1/me shows them. */
export interface UserProfile {
  id: string;
  email: string;
  name: string;
  hasPassword: boolean;
  expiresAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  role: { id: string; name: string; permissions: string[]; createdAt: Date; updatedAt: Date };
  organization: { id: string; name: string; createdAt: Date; updatedAt: Date } | null;
}

/** The four limit columns of a row; null when none is set. */
function keyLimitsOf(r: Record<string, unknown>): KeyLimits | null {
  const limits = {
    requestsPerMinute: countOrNull(r.requests_per_minute),
    requestsPerDay: countOrNull(r.requests_per_day),
    tokensPerMinute: countOrNull(r.tokens_per_minute),
    tokensPerDay: countOrNull(r.tokens_per_day),
  };
  return Object.values(limits).every((v) => v === null) ? null : Object.freeze(limits);
}

export async function findByKeyHash(pool: pg.Pool, keyHash: string): Promise<KeyPrincipalRow | null> {
  const { rows } = await pool.query<Record<string, unknown>>(
    `select k.id as key_id, k.expires_at as key_expires_at, k.revoked_at as key_revoked_at,
            k.requests_per_minute, k.requests_per_day, k.tokens_per_minute, k.tokens_per_day,
            u.id as user_id, u.email, u.name, u.expires_at as user_expires_at, u.organization_id,
            r.id as role_id, r.name as role_name, r.permissions
       from api_key k join app_user u on u.id = k.user_id join role r on r.id = u.role_id
      where k.key_hash = $1`,
    [keyHash],
  );
  const r = rows[0];
  if (!r) return null;
  return {
    keyId: r.key_id as string,
    keyExpiresAt: dateOrNull(r.key_expires_at),
    keyRevokedAt: dateOrNull(r.key_revoked_at),
    userId: r.user_id as string,
    email: r.email as string,
    name: r.name as string,
    userExpiresAt: dateOrNull(r.user_expires_at),
    organizationId: (r.organization_id as string | null) ?? null,
    roleId: r.role_id as string,
    roleName: r.role_name as string,
    permissions: (r.permissions as string[]) ?? [],
    keyLimits: keyLimitsOf(r),
  };
}

/**
 * A user with their role and organization, in one plain query: the profile read of every GET /v1/me, where
 * the ORM's hydration cost (≈4× a raw query, measured) is not worth paying.
 */
export async function getUserProfile(pool: pg.Pool, id: string): Promise<UserProfile | null> {
  const { rows } = await pool.query<Record<string, unknown>>(
    `select u.id, u.email, u.name, u.password_hash is not null as has_password, u.expires_at, u.created_at,
            u.updated_at, r.id as role_id, r.name as role_name, r.permissions, r.created_at as role_created_at,
            r.updated_at as role_updated_at, o.id as org_id, o.name as org_name, o.created_at as org_created_at,
            o.updated_at as org_updated_at
       from app_user u join role r on r.id = u.role_id left join organization o on o.id = u.organization_id
      where u.id = $1`,
    [id],
  );
  const r = rows[0];
  if (!r) return null;
  return {
    id: r.id as string,
    email: r.email as string,
    name: r.name as string,
    hasPassword: r.has_password === true,
    expiresAt: dateOrNull(r.expires_at),
    createdAt: dateOrNull(r.created_at) ?? new Date(0),
    updatedAt: dateOrNull(r.updated_at) ?? new Date(0),
    role: {
      id: r.role_id as string,
      name: r.role_name as string,
      permissions: (r.permissions as string[]) ?? [],
      createdAt: dateOrNull(r.role_created_at) ?? new Date(0),
      updatedAt: dateOrNull(r.role_updated_at) ?? new Date(0),
    },
    organization: r.org_id
      ? {
          id: r.org_id as string,
          name: r.org_name as string,
          createdAt: dateOrNull(r.org_created_at) ?? new Date(0),
          updatedAt: dateOrNull(r.org_updated_at) ?? new Date(0),
        }
      : null,
  };
}
