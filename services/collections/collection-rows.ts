import type { Metadata } from "../search/backend.js";

/** The rows of the collection store (collection-store.ts) and how pg's records become them. */

export type Visibility = "private" | "public";
export type DocumentStatus = "queued" | "parsing" | "embedding" | "ready" | "failed";

export interface CollectionRow {
  id: string;
  ownerId: string;
  name: string;
  description: string;
  visibility: Visibility;
  language: string;
  embeddingsModel: string;
  documentCount: number;
  chunkCount: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface DocumentRow {
  id: string;
  collectionId: string;
  /** The collection's owner: only they write to the document. */
  ownerId: string;
  name: string;
  fileName: string;
  mimeType: string;
  sizeBytes: number;
  metadata: Metadata;
  status: DocumentStatus;
  progress: number;
  failureReason: string;
  chunkCount: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface ChunkRow {
  documentId: string;
  id: number;
  collectionId: string;
  content: string;
  metadata: Metadata;
  createdAt: Date;
}

export const COLLECTION_COLUMNS = `c.id, c.owner_id, c.name, c.description, c.visibility, c.language, c.embeddings_model,
  c.document_count, c.chunk_count, c.created_at, c.updated_at`;
export const DOCUMENT_COLUMNS = `d.id, d.collection_id, c.owner_id, d.name, d.file_name, d.mime_type, d.size_bytes, d.metadata,
  d.status, d.progress, d.failure_reason, d.chunk_count, d.created_at, d.updated_at`;

/** MikroORM's pool reads timestamps as text (its type parsers); plain pg gives Dates. Either way, a Date. */
export const dateOf = (v: string | Date): Date => (v instanceof Date ? v : new Date(v));

// biome-ignore lint/suspicious/noExplicitAny: pg rows are untyped records
export type Row = Record<string, any>;

export const collectionOf = (r: Row): CollectionRow => ({
  id: r.id,
  ownerId: r.owner_id,
  name: r.name,
  description: r.description,
  visibility: r.visibility,
  language: r.language,
  embeddingsModel: r.embeddings_model,
  documentCount: Number(r.document_count),
  chunkCount: Number(r.chunk_count),
  createdAt: dateOf(r.created_at),
  updatedAt: dateOf(r.updated_at),
});

export const documentOf = (r: Row): DocumentRow => ({
  id: r.id,
  collectionId: r.collection_id,
  ownerId: r.owner_id,
  name: r.name,
  fileName: r.file_name,
  mimeType: r.mime_type,
  sizeBytes: Number(r.size_bytes),
  metadata: r.metadata ?? {},
  status: r.status,
  progress: Number(r.progress),
  failureReason: r.failure_reason,
  chunkCount: Number(r.chunk_count),
  createdAt: dateOf(r.created_at),
  updatedAt: dateOf(r.updated_at),
});

export const chunkOf = (r: Row): ChunkRow => ({
  documentId: r.document_id,
  id: Number(r.id),
  collectionId: r.collection_id,
  content: r.content,
  metadata: r.metadata ?? {},
  createdAt: dateOf(r.created_at),
});
