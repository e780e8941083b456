export { createElasticsearchBackend, type ElasticsearchBackendOptions } from "./elasticsearch-backend.js";
export { SearchBackendError, toSearchBackendError } from "./errors.js";
