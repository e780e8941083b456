import type { ModelTypeName } from "./validation.js";

/** The model registry's records, shared by the plain-SQL reads (model-store.ts) and the ORM's CRUD (model-crud.ts). */

export type { Learned, ProviderInput } from "./provider-store.js";

/** A model with its aliases (sorted). */
export interface ModelRecord {
  id: string;
  name: string;
  aliases: string[];
  type: ModelTypeName;
  maxContextLength: number | null;
  vectorSize: number | null;
  costPromptPerMillion: number;
  costCompletionPerMillion: number;
  createdAt: Date;
  updatedAt: Date;
}

/** A model with everything an administrator sees, and what resolution needs (providers include their keys). */
export interface ModelDetail extends ModelRecord {
  providers: ProviderRecord[];
  grantedRoleIds: string[];
  /** Each grant's limits, by role id. */
  grantLimits: Map<string, GrantLimits>;
}

/** A grant's limits: null = unlimited, 0 = forbidden. */
export interface GrantLimits {
  requestsPerMinute: number | null;
  requestsPerDay: number | null;
  tokensPerMinute: number | null;
  tokensPerDay: number | null;
}

export function isForbidden(l: GrantLimits | null | undefined): boolean {
  return (
    !!l && (l.requestsPerMinute === 0 || l.requestsPerDay === 0 || l.tokensPerMinute === 0 || l.tokensPerDay === 0)
  );
}

export function limitsOf(g: GrantColumns): GrantLimits {
  return {
    requestsPerMinute: g.requestsPerMinute ?? null,
    requestsPerDay: g.requestsPerDay ?? null,
    tokensPerMinute: g.tokensPerMinute ?? null,
    tokensPerDay: g.tokensPerDay ?? null,
  };
}

export type { Page } from "../platform/paging.js";

export interface ModelInput {
  name: string;
  aliases: string[];
  type: ModelTypeName;
  costPromptPerMillion: number;
  costCompletionPerMillion: number;
}

export interface ModelPatch {
  name?: string;
  aliases?: string[];
  type?: ModelTypeName;
  costPromptPerMillion?: number;
  costCompletionPerMillion?: number;
}

/** A provider as stored (the ORM's entity and the plain-SQL reads both fit). Its key is a secret: never return it. */
export interface ProviderRecord {
  id: string;
  model: { id: string };
  type: string;
  url: string;
  apiKey?: string | null;
  upstreamModel: string;
  timeoutSeconds: number;
  weight: number;
  maxConcurrency: number;
  carbonZone: string;
  carbonTotalParamsB: number;
  carbonActiveParamsB: number;
  createdAt: Date;
  updatedAt: Date;
}

/** A grant's limit columns (the ORM's entity, or a plain-SQL row). */
export interface GrantColumns {
  requestsPerMinute?: number | null;
  requestsPerDay?: number | null;
  tokensPerMinute?: number | null;
  tokensPerDay?: number | null;
}
