import type { MetadataFilter, MetadataValue } from "../backend.js";

/**
 * OpenAI's metadata filters as SQL over `chunk.metadata` (jsonb). The SQL text depends only on the filter's shape:
 * every key and value travels in a bind parameter appended to `params`, never in the text.
 *
 * Comparison is type-aware, as in JSON: a number matches only numbers (numerically, so 1 equals 1.0), a string only
 * strings, a boolean only booleans; `{"year": 2020}` never matches `{"year": "2020"}`.
 * - `eq` is `metadata @> {"key": value}` and `in` is `metadata @> any(array of those)`: containment is what the GIN
 *   `jsonb_path_ops` index on `chunk.metadata` answers, so a selective equality narrows the rows before anything else.
 * - `ne` and `nin` are the negations, so they also match chunks that lack the key (like Elasticsearch's `must_not`):
 *   "not from the finance department" includes documents that name no department.
 * - `gt`/`gte`/`lt`/`lte` need the key present with the value's type: numbers and booleans compare as jsonb (numeric
 *   order; false < true), strings as text in the "C" collation (byte order, the same in every database and in
 *   Elasticsearch's keyword ranges). Comparing jsonb never fails on a value of another type, so no cast can throw.
 * - An empty `and` is true and an empty `or` false (the identities of each), as are `nin []` and `in []`.
 */
export function metadataFilterSql(filter: MetadataFilter, params: unknown[], column = "metadata"): string {
  const bind = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  const walk = (f: MetadataFilter): string => {
    switch (f.type) {
      case "and":
      case "or": {
        if (f.filters.length === 0) return f.type === "and" ? "true" : "false";
        return `(${f.filters.map(walk).join(` ${f.type} `)})`;
      }
      case "eq":
        return `${column} @> ${bind(pair(f.key, f.value))}::jsonb`;
      case "ne":
        return `not (${column} @> ${bind(pair(f.key, f.value))}::jsonb)`;
      case "in":
        return `${column} @> any(${bind(f.value.map((v) => pair(f.key, v)))}::jsonb[])`;
      case "nin":
        return `not (${column} @> any(${bind(f.value.map((v) => pair(f.key, v)))}::jsonb[]))`;
      case "gt":
      case "gte":
      case "lt":
      case "lte":
        return range(column, f.type, f.key, f.value, bind);
    }
  };
  return walk(filter);
}

const OPERATORS = { gt: ">", gte: ">=", lt: "<", lte: "<=" } as const;

function range(
  column: string,
  op: keyof typeof OPERATORS,
  key: string,
  value: MetadataValue,
  bind: (v: unknown) => string,
): string {
  const k = bind(key);
  if (typeof value === "string")
    return `(jsonb_typeof(${column} -> ${k}) = 'string' and (${column} ->> ${k}) collate "C" ${OPERATORS[op]} ${bind(value)}::text)`;
  const type = typeof value === "number" ? "number" : "boolean";
  return `(jsonb_typeof(${column} -> ${k}) = '${type}' and (${column} -> ${k}) ${OPERATORS[op]} ${bind(json(value))}::jsonb)`;
}

/** `{"key": value}` as JSON text, the right operand of `@>`. */
function pair(key: string, value: MetadataValue): string {
  json(value);
  return JSON.stringify({ [key]: value });
}

/** A value as JSON; a non-finite number has no JSON form and would silently become `null`, so it is refused. */
function json(value: MetadataValue): string {
  if (typeof value === "number" && !Number.isFinite(value)) throw new RangeError(`not a JSON number: ${value}`);
  return JSON.stringify(value);
}
