import type { Logger } from "pino";
import type { Database } from "../platform/db/database.js";
import type { KvStore } from "../platform/kv/kv.js";
import { bootstrapModels, type ModelsBootstrapResult } from "./bootstrap.js";
import { createModelService } from "./model-service.js";
import { createModelStore } from "./model-store.js";
import type { ModelSpec } from "./models-file.js";
import { createHttpProbe, type Probe } from "./probe.js";
import { createModelRegistry, type ModelRegistry } from "./registry.js";

export { createModelService } from "./model-service.js";
export { createModelStore, type ModelStore } from "./model-store.js";
export { loadModelsFile, type ModelSpec, ModelsFileError, parseModelsFile } from "./models-file.js";
export { createHttpProbe, type Probe, type ProbeTarget } from "./probe.js";
export { createModelRegistry, type ModelRegistry, type ResolvedModel, type ResolvedProvider } from "./registry.js";
export type { ModelTypeName, ProviderTypeName } from "./validation.js";

/** The model registry domain, assembled: its Connect service, the registry other domains resolve models with. */
export interface Models {
  service: ReturnType<typeof createModelService>;
  registry: ModelRegistry;
  /** What the models file created at this start (undefined without PASSERELLE_MODELS_FILE). */
  bootstrap: ModelsBootstrapResult | undefined;
  close(): Promise<void>;
}

/**
 * Builds the store, the cached registry and the service, then creates what the models file (already loaded and
 * validated with loadModelsFile) lists and the database lacks; an unreachable provider is only skipped.
 */
export async function setupModels(deps: {
  db: Pick<Database, "pool" | "orm">;
  kv: KvStore;
  logger: Logger;
  specs?: ModelSpec[];
  probe?: Probe;
  /** How long a model in use stays loaded ahead of its cache expiry after its last use; 0 or unset: off. */
  keepWarmMs?: number;
}): Promise<Models> {
  const { specs } = deps;
  const store = createModelStore(deps.db);
  const probe = deps.probe ?? createHttpProbe();
  const registry = await createModelRegistry({
    store,
    kv: deps.kv,
    logger: deps.logger,
    keepWarmMs: deps.keepWarmMs,
  });
  try {
    const bootstrap = specs ? await bootstrapModels(specs, { store, probe, registry, logger: deps.logger }) : undefined;
    const service = createModelService({ store, registry, probe, logger: deps.logger });
    return { service, registry, bootstrap, close: () => registry.close() };
  } catch (err) {
    await registry.close();
    throw err;
  }
}
