import type { CoreConfig } from "../config.js";
import { modelCallDeps, type SharedUpstreams } from "../inference/index.js";
import { createOcrService } from "./ocr-service.js";
import { createRenderPool } from "./render-pool.js";

export { createOcrService, type OcrDeps } from "./ocr-service.js";
export { DEFAULT_OCR_PROMPT } from "./upstream-json.js";

/**
 * The OCR domain over the inference domain's upstream pools, provider router and model resolver (shared: a vision
 * model used for chat and OCR has one connection pool, one concurrency limit and one health state), with its own
 * pool of render threads. `close` stops the threads once the requests under way are done.
 */
export function setupOcr(deps: {
  shared: SharedUpstreams;
  upstream: CoreConfig["inference"];
  settings: CoreConfig["ocr"];
  /** The platform's upload limit (rag.maxFileBytes), applied to the decoded document. */
  maxFileBytes: number;
  /** Completion tokens reserved per page when the client sets no max_tokens. */
  defaultMaxTokens: number;
}) {
  const render = createRenderPool({ threads: deps.settings.renderThreads, dpi: deps.settings.dpi });
  const service = createOcrService({
    ...modelCallDeps(deps.shared, deps.upstream),
    render,
    maxFileBytes: deps.maxFileBytes,
    maxPages: deps.settings.maxPages,
    concurrency: deps.settings.concurrency,
    imageTokensPerPage: deps.settings.imageTokensPerPage,
    defaultMaxTokens: deps.defaultMaxTokens,
    urlAllowlist: deps.settings.urlAllowlist,
  });
  return { service, close: () => render.close() };
}
