import { Migration } from "@mikro-orm/migrations";
import { TEXT_SEARCH_LANGUAGES } from "../text-search.js";

/**
 * RAG: collections, documents and chunks (issue 6). Written by hand — the schema generator knows neither pgvector nor
 * text search — and kept PostgreSQL 15 / PGlite compatible.
 *
 * - `chunk.embedding` has no fixed dimension: the embeddings model is a setting, so the HNSW index is an expression
 *   index per dimension (`(embedding::vector(N)) vector_cosine_ops where vector_dims(embedding) = N`), created at
 *   start once the model's vector size is known (services/search/postgres/postgres-backend.ts).
 * - Full text: one configuration per supported language, `passerelle_<language>`, which is that language's stemmer
 *   behind `unaccent`, so "eléve" finds "élève" and "eleve". `tsv` is computed on insert with the collection's
 *   configuration (a stored generated column cannot read the collection's language).
 * - Chunks carry their collection id and owner-visible metadata (document metadata merged with the chunk's own)
 *   so that a search filters on one table.
 * - Chunks are written only once a document is fully embedded, in the transaction that marks it `ready`: a failed
 *   ingestion leaves nothing searchable.
 */
export class Migration20261123050000Collections extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create extension if not exists vector;`);
    this.addSql(`create extension if not exists unaccent;`);
    for (const lang of TEXT_SEARCH_LANGUAGES) {
      const stem = lang === "simple" ? "simple" : `${lang}_stem`;
      this.addSql(`create text search configuration "passerelle_${lang}" (copy = pg_catalog.${lang});`);
      this.addSql(
        `alter text search configuration "passerelle_${lang}" alter mapping for hword, hword_part, word with unaccent, ${stem};`,
      );
    }
    this.addSql(
      `create table "collection" ("id" uuid not null, "owner_id" uuid not null references "app_user" ("id") on delete cascade, "name" varchar(255) not null, "description" text not null default '', "visibility" varchar(16) not null, "language" varchar(32) not null, "embeddings_model" varchar(200) not null, "document_count" int not null default 0, "chunk_count" bigint not null default 0, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"), constraint "collection_visibility_check" check ("visibility" in ('private', 'public')), constraint "collection_counts_check" check ("document_count" >= 0 and "chunk_count" >= 0));`,
    );
    this.addSql(`create index "collection_owner_id_id_index" on "collection" ("owner_id", "id");`);
    this.addSql(`create index "collection_public_id_index" on "collection" ("id") where "visibility" = 'public';`);
    this.addSql(
      `create table "document" ("id" uuid not null, "collection_id" uuid not null references "collection" ("id") on delete cascade, "name" varchar(255) not null, "file_name" varchar(255) not null default '', "mime_type" varchar(127) not null default '', "size_bytes" bigint not null default 0, "metadata" jsonb not null default '{}', "chunking" jsonb null, "status" varchar(16) not null, "progress" smallint not null default 0, "failure_reason" text not null default '', "chunk_count" int not null default 0, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"), constraint "document_status_check" check ("status" in ('queued', 'parsing', 'embedding', 'ready', 'failed')), constraint "document_progress_check" check ("progress" between 0 and 100));`,
    );
    this.addSql(`create index "document_collection_id_id_index" on "document" ("collection_id", "id");`);
    this.addSql(
      `create index "document_unfinished_index" on "document" ("status") where "status" in ('queued', 'parsing', 'embedding');`,
    );
    this.addSql(
      `create table "chunk" ("document_id" uuid not null references "document" ("id") on delete cascade, "id" int not null, "collection_id" uuid not null, "content" text not null, "metadata" jsonb not null default '{}', "ts_config" regconfig not null, "tsv" tsvector not null, "embedding" vector not null, "created_at" timestamptz not null, primary key ("document_id", "id"));`,
    );
    this.addSql(`create index "chunk_collection_id_index" on "chunk" ("collection_id");`);
    this.addSql(`create index "chunk_tsv_index" on "chunk" using gin ("tsv");`);
    this.addSql(`create index "chunk_metadata_index" on "chunk" using gin ("metadata" jsonb_path_ops);`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "chunk";`);
    this.addSql(`drop table if exists "document";`);
    this.addSql(`drop table if exists "collection";`);
    for (const lang of TEXT_SEARCH_LANGUAGES)
      this.addSql(`drop text search configuration if exists "passerelle_${lang}";`);
  }
}
