import type pg from "pg";
import type { Logger } from "pino";
import type { SearchBackend } from "./backend.js";
import { createPostgresSearchBackend } from "./postgres/index.js";

export type { SearchBackend } from "./backend.js";
export { createSearchService } from "./search-service.js";

/**
 * PostgreSQL by default; Elasticsearch when ELASTICSEARCH_URL is set (its client is loaded only then). Chunks live in
 * PostgreSQL either way: Elasticsearch is an index over them, not their home.
 */
export async function createSearchBackend(opts: {
  pool: pg.Pool;
  elasticsearchUrl: string | undefined;
  logger: Logger;
}): Promise<SearchBackend> {
  const logger = opts.logger.child({ domain: "search" });
  if (!opts.elasticsearchUrl) return createPostgresSearchBackend({ pool: opts.pool, logger });
  const [{ Client }, { createElasticsearchBackend }] = await Promise.all([
    import("@elastic/elasticsearch"),
    import("./elasticsearch/index.js"),
  ]);
  return createElasticsearchBackend({ client: new Client({ node: opts.elasticsearchUrl }), logger });
}
