/**
 * Column values of plain-SQL rows, as the platform's pool returns them (database.ts): timestamps as PostgreSQL prints
 * them (`2026-01-01 12:00:00.123+00`, kept as text as MikroORM's driver does), int8 as text.
 */

/** A timestamp column; null stays null. */
export function dateOrNull(v: unknown): Date | null {
  if (v == null) return null;
  const d = v instanceof Date ? v : new Date(v as string);
  if (Number.isNaN(d.getTime())) throw new Error(`unreadable timestamp from the database: ${String(v)}`);
  return d;
}

/** A non-null timestamp column. */
export function dateOf(v: unknown): Date {
  const d = dateOrNull(v);
  if (!d) throw new Error("unexpected null timestamp from the database");
  return d;
}

/** A bigint column holding a count (a safe integer); null stays null. */
export function countOrNull(v: unknown): number | null {
  if (v == null) return null;
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error(`unreadable count from the database: ${String(v)}`);
  return n;
}
