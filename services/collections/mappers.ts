import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type Chunk,
  ChunkSchema,
  type Collection,
  CollectionSchema,
  type Document,
  DocumentSchema,
  DocumentStatus,
  Visibility,
} from "../../gen/passerelle/collections/v1/resources_pb.js";
import type {
  ChunkRow,
  CollectionRow,
  DocumentRow,
  DocumentStatus as StatusName,
  Visibility as VisibilityName,
} from "./collection-store.js";

export const VISIBILITY: Readonly<Record<VisibilityName, Visibility>> = {
  private: Visibility.PRIVATE,
  public: Visibility.PUBLIC,
};

export const STATUS: Readonly<Record<StatusName, DocumentStatus>> = {
  queued: DocumentStatus.QUEUED,
  parsing: DocumentStatus.PARSING,
  embedding: DocumentStatus.EMBEDDING,
  ready: DocumentStatus.READY,
  failed: DocumentStatus.FAILED,
};

export function visibilityName(v: Visibility): VisibilityName | undefined {
  if (v === Visibility.PUBLIC) return "public";
  if (v === Visibility.PRIVATE) return "private";
  return undefined;
}

export function statusName(s: DocumentStatus): StatusName | undefined {
  return (Object.entries(STATUS) as [StatusName, DocumentStatus][]).find(([, v]) => v === s)?.[0];
}

export const toCollection = (r: CollectionRow): Collection =>
  create(CollectionSchema, {
    id: r.id,
    name: r.name,
    description: r.description,
    visibility: VISIBILITY[r.visibility],
    ownerId: r.ownerId,
    language: r.language,
    documentCount: BigInt(r.documentCount),
    chunkCount: BigInt(r.chunkCount),
    createTime: timestampFromDate(r.createdAt),
    updateTime: timestampFromDate(r.updatedAt),
  });

export const toDocument = (r: DocumentRow): Document =>
  create(DocumentSchema, {
    id: r.id,
    collectionId: r.collectionId,
    name: r.name,
    fileName: r.fileName,
    mimeType: r.mimeType,
    sizeBytes: BigInt(r.sizeBytes),
    metadata: r.metadata,
    status: STATUS[r.status],
    progress: r.progress,
    failureReason: r.failureReason,
    chunkCount: BigInt(r.chunkCount),
    createTime: timestampFromDate(r.createdAt),
    updateTime: timestampFromDate(r.updatedAt),
  });

export const toChunk = (r: ChunkRow): Chunk =>
  create(ChunkSchema, {
    id: BigInt(r.id),
    documentId: r.documentId,
    collectionId: r.collectionId,
    content: r.content,
    metadata: r.metadata,
    createTime: timestampFromDate(r.createdAt),
  });
