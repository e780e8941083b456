import type { KeyLimits } from "../platform/context.js";
import type { Database } from "../platform/db/database.js";
import { lazyMethods, once } from "../platform/db/lazy.js";
import type { AccountCrud } from "./account-crud.js";
import { findByKeyHash, getUserProfile } from "./account-reads.js";
import type { ApiKey } from "./entities.js";

export type { Page } from "../platform/paging.js";
export type { KeyPrincipalRow, UserProfile } from "./account-reads.js";

export type { KeyState, UserPatch } from "./account-types.js";

/** The administrative methods, served by account-crud.ts (MikroORM) once loaded. */
const CRUD_METHODS = [
  "createOrganization",
  "getOrganization",
  "listOrganizations",
  "updateOrganization",
  "deleteOrganization",
  "countUsersByOrganization",
  "createRole",
  "getRole",
  "getRoleByName",
  "listRoles",
  "updateRole",
  "deleteRole",
  "countUsersByRole",
  "createUser",
  "getUser",
  "getUserByEmail",
  "listUsers",
  "updateUser",
  "deleteUser",
  "createKey",
  "getKey",
  "listKeys",
  "updateKey",
  "revokeKey",
  "keyHashesOfUser",
  "findKeyByHash",
] as const satisfies readonly (keyof AccountCrud)[];

export type AccountStore = ReturnType<typeof createAccountStore>;

/**
 * PostgreSQL persistence of accounts. What every request or every start reads (a key's principal, a profile, the
 * user count) is plain SQL on the pool; the administrative CRUD is MikroORM's (account-crud.ts), loaded with the ORM
 * on its first call.
 */
export function createAccountStore(db: Pick<Database, "pool" | "orm">) {
  const crud = once(async () => (await import("./account-crud.js")).createAccountCrud(await db.orm()));
  return {
    findByKeyHash: (keyHash: string) => findByKeyHash(db.pool, keyHash),
    getUserProfile: (id: string) => getUserProfile(db.pool, id),

    /** Records use of a key, at most once a minute per key (the caller rate-limits further). */
    async touchKey(keyId: string): Promise<void> {
      await db.pool.query(
        `update api_key set last_used_at = now()
          where id = $1 and (last_used_at is null or last_used_at < now() - interval '1 minute')`,
        [keyId],
      );
    },

    async countUsers(): Promise<number> {
      const { rows } = await db.pool.query<{ n: string }>("select count(*) as n from app_user");
      return Number(rows[0]?.n ?? 0);
    },

    ...lazyMethods(crud, CRUD_METHODS),
  };
}

/** A key entity's own limits; null when it has none. */
export function keyLimitsOfKey(k: Pick<ApiKey, keyof KeyLimits>): KeyLimits | null {
  const l: KeyLimits = {
    requestsPerMinute: k.requestsPerMinute ?? null,
    requestsPerDay: k.requestsPerDay ?? null,
    tokensPerMinute: k.tokensPerMinute ?? null,
    tokensPerDay: k.tokensPerDay ?? null,
  };
  return Object.values(l).every((v) => v === null) ? null : l;
}
