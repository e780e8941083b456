import type { CoreConfig } from "../config.js";
import { modelCallDeps, type SharedUpstreams } from "../inference/index.js";
import { createAudioService } from "./audio-service.js";

export { type AudioDeps, createAudioService } from "./audio-service.js";

/**
 * The audio domain over the inference domain's upstream pools, provider router and model resolver (shared, so that
 * a provider serving several domains has one connection pool, one concurrency limit and one health state).
 */
export function setupAudio(deps: {
  shared: SharedUpstreams;
  upstream: CoreConfig["inference"];
  /** The platform's upload limit (rag.maxFileBytes). */
  maxFileBytes: number;
  /** Completion tokens reserved when the transcript's length is not known yet (governance.defaultMaxTokens). */
  defaultMaxTokens: number;
}) {
  const service = createAudioService({
    ...modelCallDeps(deps.shared, deps.upstream),
    maxFileBytes: deps.maxFileBytes,
    defaultMaxTokens: deps.defaultMaxTokens,
  });
  return { service };
}
