/**
 * Document ingestion, first half: from an uploaded file to chunks of text. Parsing runs in worker threads (the
 * parser pool); detection and splitting are cheap enough for the caller's thread. Nothing here touches the
 * database or the embedding upstreams.
 */
export { detectFormat } from "./detect.js";
export { IngestError, type IngestErrorReason } from "./errors.js";
export { createParserPool, type ParserPool, type ParserPoolOptions } from "./parser-pool.js";
export {
  MAX_CHUNK_SIZE,
  MAX_SEPARATORS,
  SPLIT_DEFAULTS,
  type SplitOptions,
  splitText,
  validateSplitOptions,
} from "./split.js";
export type { DetectedFormat, DocumentFormat, ParsedDocument, ParsedUpload, UploadInput } from "./types.js";
