import type { Logger } from "pino";
import type { ModelStore } from "./model-store.js";
import type { Probe } from "./probe.js";
import type { ModelRegistry } from "./registry.js";

export interface ModelDeps {
  store: ModelStore;
  /** Resolution cache; every write here invalidates it. */
  registry: ModelRegistry;
  /** Checks an upstream before a provider is registered or re-pointed (replaced by a fake in unit tests). */
  probe: Probe;
  logger: Logger;
}
