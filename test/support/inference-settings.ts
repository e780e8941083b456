import type { CoreConfig } from "../../services/config.js";

/** Inference settings for unit tests that build the inference layer: short timeouts, one attempt, quick ejection. */
export const QUICK_INFERENCE_SETTINGS: CoreConfig["inference"] = {
  connectTimeoutMs: 1000,
  firstTokenTimeoutMs: 1000,
  idleTimeoutMs: 1000,
  maxAttempts: 1,
  queueTimeoutMs: 0,
  ejectAfterFailures: 2,
  ejectErrorPercent: 40,
  cooldownMs: 100,
};
