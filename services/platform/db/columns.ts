import { p } from "@mikro-orm/core";
import { uuidv7 } from "../ids.js";

/** Column builders every domain's entities share. */

/** UUIDv7 primary key: opaque to clients, yet time-ordered, so keyset paging by id lists in creation order. */
export const idColumn = () =>
  p
    .uuid()
    .primary()
    .onCreate(() => uuidv7());

export const createdAtColumn = () =>
  p
    .datetime()
    .columnType("timestamptz")
    .onCreate(() => new Date());

export const updatedAtColumn = () =>
  p
    .datetime()
    .columnType("timestamptz")
    .onCreate(() => new Date())
    .onUpdate(() => new Date());
