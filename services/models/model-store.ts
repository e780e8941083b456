import type pg from "pg";
import type { Database } from "../platform/db/database.js";
import { lazyMethods, once } from "../platform/db/lazy.js";
import { countOrNull, dateOf } from "../platform/db/row-values.js";
import type { Page } from "../platform/paging.js";
import type { ModelCrud } from "./model-crud.js";
import { type GrantColumns, limitsOf, type ModelDetail, type ModelRecord, type ProviderRecord } from "./model-types.js";
import type { ModelTypeName } from "./validation.js";

export * from "./model-types.js";

/** The administrative methods, served by model-crud.ts (MikroORM) once loaded. */
const CRUD_METHODS = [
  "getModel",
  "createModel",
  "listModelDetails",
  "updateModel",
  "deleteModel",
  "grant",
  "revoke",
  "getProvider",
  "listProviders",
  "createProvider",
  "updateProvider",
  "deleteProvider",
] as const satisfies readonly (keyof ModelCrud)[];

export type ModelStore = ReturnType<typeof createModelStore>;

/**
 * PostgreSQL persistence of the model registry. What serving reads (a model by name or alias for resolution, the
 * list a role may use) is plain SQL on the pool; the administrative CRUD is MikroORM's (model-crud.ts), loaded with
 * the ORM on its first call.
 */
export function createModelStore(db: Pick<Database, "pool" | "orm">) {
  const crud = once(async () => (await import("./model-crud.js")).createModelCrud(await db.orm()));
  const { pool } = db;
  return {
    /** The models file's entries created (or found) at an earlier start (bootstrap.ts): never created again. */
    async fileEntriesApplied(): Promise<Set<string>> {
      const { rows } = await pool.query<{ key: string }>(`select key from models_file_entry`);
      return new Set(rows.map((r) => r.key));
    },

    async markFileEntries(keys: string[]): Promise<void> {
      if (keys.length === 0) return;
      await pool.query(`insert into models_file_entry (key) select unnest($1::text[]) on conflict do nothing`, [keys]);
    },

    /** The id of every provider, of every model (the admins' provider states list them all). */
    async providerIds(): Promise<string[]> {
      const { rows } = await pool.query<{ id: string }>(`select id from provider`);
      return rows.map((r) => r.id);
    },

    /**
     * A model by name or alias, with providers (keys included) and grants: what resolution needs. One statement,
     * one round trip (a registry cache miss is on a request's path): aliases as an array, providers and grants as
     * JSON rows, read by the same row readers (JSON gives timestamps in ISO 8601 and int8 as numbers; both are read).
     */
    async findByName(nameOrAlias: string): Promise<ModelDetail | null> {
      const { rows } = await pool.query<Record<string, unknown>>(
        `select m.*,
          array(select a.name from model_name a where a.model_id = m.id and a.alias order by a.name) as aliases,
          coalesce((select json_agg(p order by p.id) from provider p where p.model_id = m.id), '[]') as providers,
          coalesce((select json_agg(g order by g.id) from model_grant g where g.model_id = m.id), '[]') as grants
        from model_name n join model m on m.id = n.model_id where n.name = $1`,
        [nameOrAlias],
      );
      const row = rows[0];
      if (!row) return null;
      const grantRows = (row.grants as Record<string, unknown>[]).map(grantOf);
      return {
        ...modelRecord(row, row.aliases as string[]),
        providers: (row.providers as Record<string, unknown>[]).map(providerOf),
        grantedRoleIds: grantRows.map((g) => g.roleId),
        grantLimits: new Map(grantRows.map((g) => [g.roleId, limitsOf(g)])),
      };
    },

    /** Models in creation order; `grantedTo` keeps those granted to a role; `name` is a substring filter. */
    async listModels(page: Page, filter: { grantedTo?: string; name?: string }): Promise<ModelRecord[]> {
      const params: unknown[] = [];
      const where: string[] = [];
      if (page.after) where.push(`m.id > $${params.push(page.after)}`);
      if (filter.name)
        where.push(`m.name ilike $${params.push(`%${filter.name.replace(/[\\%_]/g, (c) => `\\${c}`)}%`)}`);
      if (filter.grantedTo) {
        // A limit of 0 forbids the model: it is hidden from the role's list.
        where.push(
          `exists (select 1 from model_grant g where g.model_id = m.id and g.role_id = $${params.push(filter.grantedTo)}
              and coalesce(g.requests_per_minute, 1) <> 0 and coalesce(g.requests_per_day, 1) <> 0
              and coalesce(g.tokens_per_minute, 1) <> 0 and coalesce(g.tokens_per_day, 1) <> 0)`,
        );
      }
      const { rows } = await pool.query<Record<string, unknown>>(
        `select m.* from model m ${where.length ? `where ${where.join(" and ")}` : ""}
          order by m.id limit $${params.push(page.limit)}`,
        params,
      );
      const aliases = await aliasesOf(
        pool,
        rows.map((r) => r.id as string),
      );
      return rows.map((r) => modelRecord(r, aliases.get(r.id as string) ?? []));
    },

    ...lazyMethods(crud, CRUD_METHODS),
  };
}

/** Each model's aliases, sorted. */
async function aliasesOf(pool: pg.Pool, ids: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>(ids.map((id) => [id, []]));
  if (ids.length === 0) return out;
  const { rows } = await pool.query<{ model_id: string; name: string }>(
    `select model_id, name from model_name where model_id = any($1::uuid[]) and alias order by name`,
    [ids],
  );
  for (const r of rows) out.get(r.model_id)?.push(r.name);
  return out;
}

function modelRecord(r: Record<string, unknown>, aliases: string[]): ModelRecord {
  return {
    id: r.id as string,
    name: r.name as string,
    aliases,
    type: r.type as ModelTypeName,
    maxContextLength: (r.max_context_length as number | null) ?? null,
    vectorSize: (r.vector_size as number | null) ?? null,
    costPromptPerMillion: r.cost_prompt_per_million as number,
    costCompletionPerMillion: r.cost_completion_per_million as number,
    createdAt: dateOf(r.created_at),
    updatedAt: dateOf(r.updated_at),
  };
}

function providerOf(r: Record<string, unknown>): ProviderRecord {
  return {
    id: r.id as string,
    model: { id: r.model_id as string },
    type: r.type as string,
    url: r.url as string,
    apiKey: (r.api_key as string | null) ?? null,
    upstreamModel: r.upstream_model as string,
    timeoutSeconds: r.timeout_seconds as number,
    weight: r.weight as number,
    maxConcurrency: r.max_concurrency as number,
    carbonZone: r.carbon_zone as string,
    carbonTotalParamsB: r.carbon_total_params_b as number,
    carbonActiveParamsB: r.carbon_active_params_b as number,
    createdAt: dateOf(r.created_at),
    updatedAt: dateOf(r.updated_at),
  };
}

function grantOf(r: Record<string, unknown>): GrantColumns & { roleId: string } {
  return {
    roleId: r.role_id as string,
    requestsPerMinute: countOrNull(r.requests_per_minute),
    requestsPerDay: countOrNull(r.requests_per_day),
    tokensPerMinute: countOrNull(r.tokens_per_minute),
    tokensPerDay: countOrNull(r.tokens_per_day),
  };
}
