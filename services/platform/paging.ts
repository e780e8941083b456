import { invalidArgument } from "./errors.js";

/** A keyset page request for stores: ids after `after`, at most `limit` rows. */
export interface Page {
  after?: string;
  limit: number;
}

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

/** Clamps a requested page size: 0 → default, above the cap → the cap, negative → InvalidArgument. */
export function pageSize(requested: number): number {
  if (requested < 0) throw invalidArgument("page_size must not be negative.", "page_size");
  if (requested === 0) return DEFAULT_PAGE_SIZE;
  return Math.min(requested, MAX_PAGE_SIZE);
}

/**
 * Page tokens are opaque to clients; today a token is the last id returned (keyset paging over time-ordered
 * UUIDv7 ids), which also lets the REST bridge offer OpenAI's `after=<id>` cursor.
 */
export function encodePageToken(lastId: string): string {
  return lastId;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function decodePageToken(token: string): string | undefined {
  if (!token) return undefined;
  if (!UUID.test(token)) throw invalidArgument("page_token is not a token this server issued.", "page_token");
  return token;
}

/** Given `size + 1` rows fetched, returns the page and the next token. */
export function paginate<T extends { id: string }>(rows: T[], size: number): { items: T[]; nextPageToken: string } {
  if (rows.length <= size) return { items: rows, nextPageToken: "" };
  const items = rows.slice(0, size);
  const last = items[items.length - 1];
  return { items, nextPageToken: last ? encodePageToken(last.id) : "" };
}

export function isUuid(value: string): boolean {
  return UUID.test(value);
}
