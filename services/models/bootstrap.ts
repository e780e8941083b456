import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { ModelStore } from "./model-store.js";
import type { ModelSpec } from "./models-file.js";
import type { Probe } from "./probe.js";
import type { ModelRegistry } from "./registry.js";
import { checkProviderFits, FieldError } from "./validation.js";

export interface ModelsBootstrapResult {
  modelsCreated: number;
  providersCreated: number;
  /** Models and providers of the file left out, each with why. */
  skipped: string[];
}

/** Conflicts and unusable upstreams are reported and skipped; anything else (the database failing) is fatal. */
function skippable(err: unknown): err is ConnectError {
  return (
    err instanceof ConnectError &&
    [Code.AlreadyExists, Code.FailedPrecondition, Code.InvalidArgument, Code.Unavailable].includes(err.code)
  );
}

/** The key of a models file entry in `models_file_entry`. */
const modelKey = (name: string) => `model:${name}`;
const providerKey = (model: string, url: string, upstreamModel: string) => `provider:${model} ${url} ${upstreamModel}`;

/**
 * Creates, at start, the models and providers of the models file that the database does not have yet. The database
 * wins afterwards: an existing model (same name) keeps its fields and aliases, an existing provider (same model,
 * URL and upstream model) keeps its settings and key, and an entry created (or found) at an earlier start is never
 * created again (`models_file_entry`): a model an administrator renamed or deleted, a provider re-pointed or
 * removed, stays so. A provider whose upstream cannot be used (unreachable, model not served, inconsistent) is
 * skipped with a warning and tried again at the next start; so is a model whose name or an alias is taken by
 * another model.
 */
export async function bootstrapModels(
  specs: ModelSpec[],
  deps: { store: ModelStore; probe: Probe; registry: ModelRegistry; logger: Logger },
): Promise<ModelsBootstrapResult> {
  const { store, probe, logger } = deps;
  const result: ModelsBootstrapResult = { modelsCreated: 0, providersCreated: 0, skipped: [] };
  const skip = (what: string, why: string) => {
    result.skipped.push(`${what}: ${why}`);
    logger.warn({ what, why }, "models file: skipped");
  };
  const applied = await store.fileEntriesApplied();
  const done: string[] = [];

  // One model after the other, each provider after the other: the consistency check of a provider depends on the
  // ones registered before it (and the embedded database prefers one transaction at a time).
  for (const spec of specs) {
    let model = await store.findByName(spec.name);
    if (!model && applied.has(modelKey(spec.name))) {
      logger.info({ model: spec.name }, "models file: left out (renamed or deleted since a start created it)");
      continue;
    }
    if (model && model.name !== spec.name) {
      skip(`model '${spec.name}'`, `'${spec.name}' is an alias of model '${model.name}'`);
      continue;
    }
    if (!model) {
      try {
        model = await store.createModel(spec);
        result.modelsCreated++;
        logger.info({ model: spec.name }, "models file: created model");
      } catch (err) {
        if (!skippable(err)) throw err;
        skip(`model '${spec.name}'`, err.rawMessage);
        continue;
      }
    }
    done.push(modelKey(spec.name));
    for (const p of spec.providers) {
      const what = `provider ${p.url} (${p.upstreamModel}) of model '${spec.name}'`;
      const key = providerKey(spec.name, p.url, p.upstreamModel);
      if (model.providers.some((e) => e.url === p.url && e.upstreamModel === p.upstreamModel)) {
        done.push(key);
        continue;
      }
      if (applied.has(key)) continue; // re-pointed or removed by an administrator since
      try {
        checkProviderFits(p.type, model.type);
        const learned = await probe({
          type: p.type,
          url: p.url,
          key: p.key,
          upstreamModel: p.upstreamModel,
          modelType: model.type,
        });
        const created = await store.createProvider(model.id, { ...p, apiKey: p.key }, learned);
        if (!created) {
          skip(what, "the model was deleted meanwhile");
          continue;
        }
        result.providersCreated++;
        done.push(key);
        logger.info({ model: spec.name, url: p.url }, "models file: created provider");
      } catch (err) {
        if (err instanceof FieldError) {
          skip(what, `type ${err.message} (the model's type in the database is ${model.type})`);
          continue;
        }
        if (!skippable(err)) throw err;
        skip(what, err.rawMessage);
      }
    }
  }
  await store.markFileEntries(done.filter((k) => !applied.has(k)));
  if (result.modelsCreated + result.providersCreated > 0) await deps.registry.invalidateAll();
  return result;
}
