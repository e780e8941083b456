import type pg from "pg";
import { inTransaction } from "../platform/db/transaction.js";
import { uuidv7 } from "../platform/ids.js";
import type { Metadata, SearchBackend } from "../search/backend.js";
import {
  type ChunkRow,
  COLLECTION_COLUMNS,
  type CollectionRow,
  chunkOf,
  collectionOf,
  DOCUMENT_COLUMNS,
  type DocumentRow,
  type DocumentStatus,
  documentOf,
  type Row,
  type Visibility,
} from "./collection-rows.js";

export type { ChunkRow, CollectionRow, DocumentRow, DocumentStatus, Visibility } from "./collection-rows.js";

/**
 * Collections, documents and chunks in PostgreSQL, in plain SQL over the ORM's pool: the listing and ingestion paths
 * want bind parameters, `unnest` batches and explicit transactions. Every read takes the caller's user id and
 * returns only what that user may see (their own rows, or public collections for reads); writes take the owner's id
 * and touch nothing else. A row the caller may not see is reported exactly like a row that does not exist.
 */

/** Who may read: the owner, or anyone when public. `$1` is the caller. */
const READABLE = `(c.owner_id = $1 or c.visibility = 'public')`;

/** Makes deleted chunks unsearchable in the search engine; throws when it could not. */
export type Purge = () => Promise<void>;

/**
 * A delete's purge of `target` from `backend`. None for PostgreSQL: its index is the chunk rows the delete itself
 * removes (and its `remove`, on another connection, would wait forever on the delete's own row locks).
 */
export const purgeOf = (backend: SearchBackend, target: Parameters<SearchBackend["remove"]>[0]): Purge | undefined =>
  backend.name === "postgres" ? undefined : () => backend.remove(target);

export type CollectionStore = ReturnType<typeof createCollectionStore>;

export function createCollectionStore(pool: pg.Pool) {
  const one = async (sql: string, params: unknown[]) => (await pool.query(sql, params)).rows[0] as Row | undefined;

  return {
    pool,

    async createCollection(input: {
      ownerId: string;
      name: string;
      description: string;
      visibility: Visibility;
      language: string;
      embeddingsModel: string;
    }): Promise<CollectionRow> {
      const now = new Date();
      const row = await one(
        `insert into collection as c (id, owner_id, name, description, visibility, language, embeddings_model, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $8) returning ${COLLECTION_COLUMNS}`,
        [
          uuidv7(),
          input.ownerId,
          input.name,
          input.description,
          input.visibility,
          input.language,
          input.embeddingsModel,
          now,
        ],
      );
      return collectionOf(row as Row);
    },

    /** A collection the user may read, or undefined. */
    async readableCollection(userId: string, id: string): Promise<CollectionRow | undefined> {
      const row = await one(`select ${COLLECTION_COLUMNS} from collection c where c.id = $2 and ${READABLE}`, [
        userId,
        id,
      ]);
      return row && collectionOf(row);
    },

    /** The readable collections among `ids` (all readable ones when `ids` is empty), at most `max`. */
    async readableCollections(userId: string, ids: readonly string[], max = 10_000): Promise<CollectionRow[]> {
      const rows = await pool.query(
        ids.length > 0
          ? `select ${COLLECTION_COLUMNS} from collection c where c.id = any($2::uuid[]) and ${READABLE} limit $3`
          : `select ${COLLECTION_COLUMNS} from collection c where ${READABLE} and $2::uuid[] is not null order by c.id desc limit $3`,
        [userId, ids, max],
      );
      return rows.rows.map(collectionOf);
    },

    async listCollections(
      userId: string,
      filter: { name?: string; visibility?: Visibility },
      page: { after?: string; limit: number },
    ): Promise<CollectionRow[]> {
      const params: unknown[] = [userId, page.limit];
      const where = [READABLE];
      if (page.after) where.push(`c.id < $${params.push(page.after)}`);
      if (filter.name) where.push(`strpos(lower(c.name), lower($${params.push(filter.name)})) > 0`);
      if (filter.visibility) where.push(`c.visibility = $${params.push(filter.visibility)}`);
      const rows = await pool.query(
        `select ${COLLECTION_COLUMNS} from collection c where ${where.join(" and ")} order by c.id desc limit $2`,
        params,
      );
      return rows.rows.map(collectionOf);
    },

    /** Changes an owned collection; undefined when the user does not own it. */
    async updateCollection(
      ownerId: string,
      id: string,
      changes: { name?: string; description?: string; visibility?: Visibility },
    ): Promise<CollectionRow | undefined> {
      const row = await one(
        `update collection c set name = coalesce($3, c.name), description = coalesce($4, c.description),
           visibility = coalesce($5, c.visibility), updated_at = now()
         where c.id = $2 and c.owner_id = $1 returning ${COLLECTION_COLUMNS}`,
        [ownerId, id, changes.name ?? null, changes.description ?? null, changes.visibility ?? null],
      );
      return row && collectionOf(row);
    },

    /**
     * Deletes an owned collection (documents and chunks cascade); false when the user does not own it. `purge` runs
     * before the delete commits (see `inTransaction`).
     */
    async deleteCollection(ownerId: string, id: string, purge?: Purge): Promise<boolean> {
      return inTransaction(pool, async (client) => {
        const res = await client.query(`delete from collection where id = $2 and owner_id = $1`, [ownerId, id]);
        if (!res.rowCount) return false;
        await purge?.();
        return true;
      });
    },

    /** Creates queued documents in an owned collection, counted at once; undefined when not owned. */
    async createDocuments(
      ownerId: string,
      collectionId: string,
      docs: {
        name: string;
        fileName: string;
        mimeType: string;
        sizeBytes: number;
        metadata: Metadata;
        status: DocumentStatus;
        chunking: unknown;
      }[],
    ): Promise<DocumentRow[] | undefined> {
      // Nothing written when the collection is not owned: committing that is the same as rolling back.
      return inTransaction(pool, async (client) => {
        const owned = await client.query(
          `update collection set document_count = document_count + $3, updated_at = now()
           where id = $2 and owner_id = $1 returning owner_id`,
          [ownerId, collectionId, docs.length],
        );
        if (owned.rowCount === 0) return undefined;
        const now = new Date();
        const rows = await client.query(
          `insert into document (id, collection_id, name, file_name, mime_type, size_bytes, metadata, chunking, status, created_at, updated_at)
           select id, $1, name, file_name, mime_type, size_bytes, metadata, chunking, status, $2, $2
           from unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::jsonb[], $9::jsonb[], $10::text[])
             as v(id, name, file_name, mime_type, size_bytes, metadata, chunking, status)
           returning id`,
          [
            collectionId,
            now,
            docs.map(() => uuidv7()),
            docs.map((d) => d.name),
            docs.map((d) => d.fileName),
            docs.map((d) => d.mimeType),
            docs.map((d) => d.sizeBytes),
            docs.map((d) => JSON.stringify(d.metadata)),
            docs.map((d) => (d.chunking === undefined ? null : JSON.stringify(d.chunking))),
            docs.map((d) => d.status),
          ],
        );
        const ids = rows.rows.map((r: Row) => r.id as string);
        const full = await client.query(
          `select ${DOCUMENT_COLUMNS} from document d join collection c on c.id = d.collection_id
           where d.id = any($1::uuid[]) order by d.id`,
          [ids],
        );
        return full.rows.map(documentOf);
      });
    },

    /** A document the user may read, or undefined. */
    async readableDocument(userId: string, id: string): Promise<DocumentRow | undefined> {
      const row = await one(
        `select ${DOCUMENT_COLUMNS} from document d join collection c on c.id = d.collection_id
         where d.id = $2 and ${READABLE}`,
        [userId, id],
      );
      return row && documentOf(row);
    },

    async listDocuments(
      userId: string,
      filter: { collectionId?: string; status?: DocumentStatus },
      page: { after?: string; limit: number },
    ): Promise<DocumentRow[]> {
      const params: unknown[] = [userId, page.limit];
      const where = [READABLE];
      if (filter.collectionId) where.push(`d.collection_id = $${params.push(filter.collectionId)}`);
      // Without a collection: the user's own documents only (public collections' documents are listed per collection).
      else where.push("c.owner_id = $1");
      if (page.after) where.push(`d.id < $${params.push(page.after)}`);
      if (filter.status) where.push(`d.status = $${params.push(filter.status)}`);
      const rows = await pool.query(
        `select ${DOCUMENT_COLUMNS} from document d join collection c on c.id = d.collection_id
         where ${where.join(" and ")} order by d.id desc limit $2`,
        params,
      );
      return rows.rows.map(documentOf);
    },

    /** The ids among `ids` of documents the user may read. */
    async readableDocumentIds(userId: string, ids: readonly string[]): Promise<Set<string>> {
      if (ids.length === 0) return new Set();
      const rows = await pool.query(
        `select d.id from document d join collection c on c.id = d.collection_id where d.id = any($2::uuid[]) and ${READABLE}`,
        [userId, ids],
      );
      return new Set(rows.rows.map((r: Row) => r.id as string));
    },

    /** Names of documents, for search results. */
    async documentNames(ids: readonly string[]): Promise<Map<string, string>> {
      if (ids.length === 0) return new Map();
      const rows = await pool.query(`select id, name from document where id = any($1::uuid[])`, [ids]);
      return new Map(rows.rows.map((r: Row) => [r.id as string, r.name as string]));
    },

    /**
     * Deletes an owned document and its chunks; the collection's counts follow. Undefined when not owned. `purge` runs
     * before the delete commits (see `inTransaction`).
     */
    async deleteDocument(ownerId: string, id: string, purge?: Purge): Promise<{ collectionId: string } | undefined> {
      return inTransaction(pool, async (client) => {
        const res = await client.query(
          `with d as (delete from document d using collection c
                      where d.id = $2 and c.id = d.collection_id and c.owner_id = $1
                      returning d.collection_id, d.chunk_count, d.status)
           update collection c set document_count = c.document_count - 1,
             chunk_count = c.chunk_count - (select case when status = 'ready' then chunk_count else 0 end from d),
             updated_at = now()
           from d where c.id = d.collection_id returning c.id`,
          [ownerId, id],
        );
        const row = res.rows[0] as Row | undefined;
        if (!row) return undefined;
        await purge?.();
        return { collectionId: row.id as string };
      });
    },

    /** Moves a document along its ingestion; never out of a final state. */
    async setStatus(id: string, status: DocumentStatus, progress: number, failureReason = ""): Promise<void> {
      await pool.query(
        `update document set status = $2, progress = $3, failure_reason = $4, updated_at = now()
         where id = $1 and status not in ('ready', 'failed')`,
        [id, status, progress, failureReason],
      );
    },

    /**
     * Takes a queued document into ingestion (`parsing`). False when it is no longer queued (failed by the sweep,
     * deleted): its ingestion must then not start, nor be billed.
     */
    async claim(id: string): Promise<boolean> {
      const res = await pool.query(
        `update document set status = 'parsing', progress = 5, updated_at = now() where id = $1 and status = 'queued'`,
        [id],
      );
      return (res.rowCount ?? 0) > 0;
    },

    /** Marks these documents' ingestions alive, so that `failInterrupted` (which goes by `updated_at`) spares them. */
    async touch(ids: readonly string[]): Promise<void> {
      if (ids.length === 0) return;
      await pool.query(
        `update document set updated_at = now()
         where id = any($1::uuid[]) and status in ('queued', 'parsing', 'embedding')`,
        [ids],
      );
    },

    /** Documents left mid-ingestion by a process that stopped: they fail (their files were never kept). */
    async failInterrupted(reason: string, olderThan: Date): Promise<number> {
      const res = await pool.query(
        `update document set status = 'failed', failure_reason = $1, updated_at = now()
         where status in ('queued', 'parsing', 'embedding') and updated_at < $2`,
        [reason, olderThan],
      );
      return res.rowCount ?? 0;
    },

    async listChunks(documentId: string, page: { after?: number; limit: number }): Promise<ChunkRow[]> {
      const rows = await pool.query(
        `select document_id, id, collection_id, content, metadata, created_at from chunk
         where document_id = $1 and id > $2 order by id limit $3`,
        [documentId, page.after ?? 0, page.limit],
      );
      return rows.rows.map(chunkOf);
    },

    async getChunk(documentId: string, id: number): Promise<ChunkRow | undefined> {
      const row = await one(
        `select document_id, id, collection_id, content, metadata, created_at from chunk where document_id = $1 and id = $2`,
        [documentId, id],
      );
      return row && chunkOf(row);
    },

    /** Deletes a chunk; its document's and collection's counts follow. `purge` runs before the delete commits. */
    async deleteChunk(documentId: string, id: number, purge?: Purge): Promise<boolean> {
      return inTransaction(pool, async (client) => {
        const res = await client.query(`delete from chunk where document_id = $1 and id = $2 returning collection_id`, [
          documentId,
          id,
        ]);
        if (!res.rowCount) return false;
        await client.query(`update document set chunk_count = chunk_count - 1, updated_at = now() where id = $1`, [
          documentId,
        ]);
        await client.query(`update collection set chunk_count = chunk_count - 1 where id = $1`, [
          res.rows[0].collection_id,
        ]);
        await purge?.();
        return true;
      });
    },

    /**
     * Runs `write` (which inserts the chunks) and, in the same transaction, counts them on the document and its
     * collection and marks the document ready: a document is searchable whole or not at all. `expect` guards against
     * a concurrent change: the document must still be in one of these statuses (else nothing is written).
     */
    async commitChunks(
      documentId: string,
      count: number,
      expect: readonly DocumentStatus[],
      write: (client: pg.PoolClient, first: number) => Promise<void>,
    ): Promise<{ first: number } | undefined> {
      // A document not in `expect` is left as it is (locked, nothing written): committing that is rolling back.
      return inTransaction(pool, async (client) => {
        const doc = await client.query(
          `select d.collection_id, d.status, coalesce((select max(id) from chunk where document_id = d.id), 0) as last
           from document d where d.id = $1 for update`,
          [documentId],
        );
        const row = doc.rows[0] as Row | undefined;
        if (!row || !expect.includes(row.status)) return undefined;
        const first = Number(row.last) + 1;
        await write(client, first);
        await client.query(
          `update document set status = 'ready', progress = 100, failure_reason = '', chunk_count = chunk_count + $2,
             updated_at = now() where id = $1`,
          [documentId, count],
        );
        await client.query(`update collection set chunk_count = chunk_count + $2, updated_at = now() where id = $1`, [
          row.collection_id,
          count,
        ]);
        return { first };
      });
    },
  };
}
