/** The PostgreSQL search backend (pgvector + full text over the `chunk` table) and the chunk writer its store uses. */
export { INSERT_BATCH, insertChunks, isTextSearchLanguage, textSearchConfig, vectorLiteral } from "./chunk-sql.js";
export { metadataFilterSql } from "./filter-sql.js";
export { createPostgresSearchBackend, type PostgresSearchOptions } from "./postgres-backend.js";
export { LEXICAL_CANDIDATES } from "./search-sql.js";
