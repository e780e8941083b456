import fs from "node:fs/promises";
import { parse } from "yaml";
import {
  type Carbon,
  checkAliases,
  checkCarbon,
  checkCost,
  checkInt,
  checkKey,
  checkModelName,
  checkProviderFits,
  checkUpstreamModel,
  checkUrl,
  DEFAULT_CARBON_ZONE,
  DEFAULT_TIMEOUT_SECONDS,
  DEFAULT_WEIGHT,
  FieldError,
  MAX_CONCURRENCY,
  MAX_TIMEOUT_SECONDS,
  MAX_WEIGHT,
  MODEL_TYPES,
  type ModelTypeName,
  PROVIDER_TYPES,
  type ProviderTypeName,
} from "./validation.js";

/**
 * The models file (PASSERELLE_MODELS_FILE), in the shape:
 *
 *   models:
 *     - name: qwen2.5-7b
 *       aliases: [chat-default]
 *       type: text-generation
 *       costs: { prompt_tokens: 0.1, completion_tokens: 0.3 }   # per 1M tokens
 *       providers:
 *         - { type: vllm, url: "http://127.0.0.1:8001", key: sk-…, model_name: Qwen/Qwen2.5-7B-Instruct,
 *             timeout_s: 120, max_concurrency: 64, weight: 1, carbon: { zone: FRA, total_params_b: 7.6, active_params_b: 7.6 } }
 *
 * Every key is checked (an unknown one is an error, to catch typos) and every error names its path, e.g.
 * `models[0].providers[1].url must be an http(s) URL`.
 */

export interface ProviderSpec {
  type: ProviderTypeName;
  url: string;
  key: string | null;
  upstreamModel: string;
  timeoutSeconds: number;
  weight: number;
  maxConcurrency: number;
  carbon: Carbon;
}

export interface ModelSpec {
  name: string;
  aliases: string[];
  type: ModelTypeName;
  costPromptPerMillion: number;
  costCompletionPerMillion: number;
  providers: ProviderSpec[];
}

export class ModelsFileError extends Error {}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** Parses and validates the file's text; `source` prefixes every error message. */
export function parseModelsFile(text: string, source: string): ModelSpec[] {
  const fail = (path: string, message: string): never => {
    throw new ModelsFileError(`${source}: ${path} ${message}`);
  };
  /** Runs a shared check, reporting its FieldError at `path`. */
  const at = <T>(path: string, check: () => T): T => {
    try {
      return check();
    } catch (err) {
      if (err instanceof FieldError) return fail(path + err.sub, err.message);
      throw err;
    }
  };
  const mapping = (path: string, v: unknown, allowed: readonly string[]): Obj => {
    if (!isObj(v)) return fail(path, "must be a mapping");
    for (const k of Object.keys(v)) if (!allowed.includes(k)) fail(`${path}.${k}`, "is not a known key");
    return v;
  };
  const str = (path: string, v: unknown): string => (typeof v === "string" ? v : fail(path, "must be a string"));
  const num = (path: string, v: unknown, fallback: number): number => {
    if (v === undefined || v === null) return fallback;
    return typeof v === "number" ? v : fail(path, "must be a number");
  };
  const list = (path: string, v: unknown): unknown[] => {
    if (v === undefined || v === null) return [];
    return Array.isArray(v) ? v : fail(path, "must be a list");
  };

  let doc: unknown;
  try {
    doc = parse(text, { uniqueKeys: true });
  } catch (err) {
    throw new ModelsFileError(`${source}: not valid YAML: ${(err as Error).message}`);
  }
  const root = mapping("(root)", doc ?? {}, ["models"]);
  const owners = new Map<string, string>();
  return list("models", root.models).map((raw, i): ModelSpec => {
    const p = `models[${i}]`;
    const m = mapping(p, raw, ["name", "aliases", "type", "costs", "providers"]);
    if (m.name === undefined) fail(`${p}.name`, "is required");
    const name = at(`${p}.name`, () => checkModelName(str(`${p}.name`, m.name)));
    const aliases = at(`${p}.aliases`, () =>
      checkAliases(
        list(`${p}.aliases`, m.aliases).map((a, j) => str(`${p}.aliases[${j}]`, a)),
        name,
      ),
    );
    for (const [j, n] of [name, ...aliases].entries()) {
      const where = j === 0 ? `${p}.name` : `${p}.aliases[${j - 1}]`;
      const owner = owners.get(n);
      if (owner) fail(where, `'${n}' is already used by ${owner}`);
      owners.set(n, p);
    }
    if (m.type === undefined) fail(`${p}.type`, "is required");
    const type = str(`${p}.type`, m.type) as ModelTypeName;
    if (!MODEL_TYPES.includes(type)) fail(`${p}.type`, `must be one of ${MODEL_TYPES.join(", ")}`);
    const costs = m.costs === undefined ? {} : mapping(`${p}.costs`, m.costs, ["prompt_tokens", "completion_tokens"]);
    const cost = (k: string) => at(`${p}.costs.${k}`, () => checkCost(num(`${p}.costs.${k}`, costs[k], 0)));
    const providers = list(`${p}.providers`, m.providers).map((rawP, j): ProviderSpec => {
      const q = `${p}.providers[${j}]`;
      const v = mapping(q, rawP, [
        "type",
        "url",
        "key",
        "model_name",
        "timeout_s",
        "max_concurrency",
        "weight",
        "carbon",
      ]);
      for (const k of ["type", "url", "model_name"]) if (v[k] === undefined) fail(`${q}.${k}`, "is required");
      const ptype = str(`${q}.type`, v.type) as ProviderTypeName;
      if (!PROVIDER_TYPES.includes(ptype)) fail(`${q}.type`, `must be one of ${PROVIDER_TYPES.join(", ")}`);
      at(`${q}.type`, () => checkProviderFits(ptype, type));
      const c =
        v.carbon === undefined ? {} : mapping(`${q}.carbon`, v.carbon, ["zone", "total_params_b", "active_params_b"]);
      return {
        type: ptype,
        url: at(`${q}.url`, () => checkUrl(str(`${q}.url`, v.url))),
        key: v.key === undefined || v.key === null ? null : at(`${q}.key`, () => checkKey(str(`${q}.key`, v.key))),
        upstreamModel: at(`${q}.model_name`, () => checkUpstreamModel(str(`${q}.model_name`, v.model_name))),
        timeoutSeconds: at(`${q}.timeout_s`, () =>
          checkInt(num(`${q}.timeout_s`, v.timeout_s, DEFAULT_TIMEOUT_SECONDS), 1, MAX_TIMEOUT_SECONDS),
        ),
        maxConcurrency: at(`${q}.max_concurrency`, () =>
          checkInt(num(`${q}.max_concurrency`, v.max_concurrency, 0), 0, MAX_CONCURRENCY),
        ),
        weight: at(`${q}.weight`, () => checkInt(num(`${q}.weight`, v.weight, DEFAULT_WEIGHT), 1, MAX_WEIGHT)),
        carbon: at(`${q}.carbon`, () =>
          checkCarbon({
            zone: c.zone === undefined ? DEFAULT_CARBON_ZONE : str(`${q}.carbon.zone`, c.zone),
            totalParamsB: num(`${q}.carbon.total_params_b`, c.total_params_b, 0),
            activeParamsB: num(`${q}.carbon.active_params_b`, c.active_params_b, 0),
          }),
        ),
      };
    });
    return {
      name,
      aliases,
      type,
      costPromptPerMillion: cost("prompt_tokens"),
      costCompletionPerMillion: cost("completion_tokens"),
      providers,
    };
  });
}

export async function loadModelsFile(file: string): Promise<ModelSpec[]> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (err) {
    throw new ModelsFileError(`PASSERELLE_MODELS_FILE: cannot read ${file}: ${(err as Error).message}`);
  }
  return parseModelsFile(text, `PASSERELLE_MODELS_FILE (${file})`);
}
