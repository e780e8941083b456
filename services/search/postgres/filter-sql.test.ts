import { describe, expect, it } from "vitest";
import type { MetadataFilter } from "../backend.js";
import { metadataFilterSql } from "./filter-sql.js";

/** The SQL shapes; what they select on a real database is tested in postgres-backend.test.ts. */
const sql = (filter: MetadataFilter, params: unknown[] = []) => ({ text: metadataFilterSql(filter, params), params });

describe("metadataFilterSql", () => {
  it("writes eq and ne as jsonb containment, so the GIN index applies", () => {
    expect(sql({ type: "eq", key: "dept", value: "lettres" })).toEqual({
      text: "metadata @> $1::jsonb",
      params: ['{"dept":"lettres"}'],
    });
    expect(sql({ type: "ne", key: "year", value: 2020 })).toEqual({
      text: "not (metadata @> $1::jsonb)",
      params: ['{"year":2020}'],
    });
    expect(sql({ type: "eq", key: "public", value: true }).params).toEqual(['{"public":true}']);
  });

  it("writes in and nin as containment of any of an array", () => {
    expect(sql({ type: "in", key: "k", value: ["a", 1, false] })).toEqual({
      text: "metadata @> any($1::jsonb[])",
      params: [['{"k":"a"}', '{"k":1}', '{"k":false}']],
    });
    expect(sql({ type: "nin", key: "k", value: [] })).toEqual({
      text: "not (metadata @> any($1::jsonb[]))",
      params: [[]],
    });
  });

  it("compares numbers and booleans as jsonb of the same type, strings as text in byte order", () => {
    expect(sql({ type: "gt", key: "year", value: 2019 })).toEqual({
      text: "(jsonb_typeof(metadata -> $1) = 'number' and (metadata -> $1) > $2::jsonb)",
      params: ["year", "2019"],
    });
    expect(sql({ type: "lte", key: "ok", value: false }).text).toBe(
      "(jsonb_typeof(metadata -> $1) = 'boolean' and (metadata -> $1) <= $2::jsonb)",
    );
    expect(sql({ type: "gte", key: "name", value: "m" })).toEqual({
      text: `(jsonb_typeof(metadata -> $1) = 'string' and (metadata ->> $1) collate "C" >= $2::text)`,
      params: ["name", "m"],
    });
    expect(sql({ type: "lt", key: "x", value: 1.5 }).text).toContain("< $2::jsonb");
  });

  it("nests and/or with parentheses and numbers parameters in order", () => {
    const filter: MetadataFilter = {
      type: "or",
      filters: [
        {
          type: "and",
          filters: [
            { type: "eq", key: "a", value: 1 },
            { type: "gt", key: "b", value: 2 },
          ],
        },
        { type: "nin", key: "c", value: ["x"] },
      ],
    };
    const params = ["already there"];
    expect(sql(filter, params)).toEqual({
      text:
        "((metadata @> $2::jsonb and (jsonb_typeof(metadata -> $3) = 'number' and (metadata -> $3) > $4::jsonb))" +
        " or not (metadata @> any($5::jsonb[])))",
      params: ["already there", '{"a":1}', "b", "2", ['{"c":"x"}']],
    });
  });

  it("treats an empty and as true and an empty or as false", () => {
    expect(sql({ type: "and", filters: [] }).text).toBe("true");
    expect(sql({ type: "or", filters: [] }).text).toBe("false");
  });

  it("never writes a key or a value into the SQL text", () => {
    const evil = `x'); drop table chunk; --`;
    const filters: MetadataFilter[] = [
      { type: "eq", key: evil, value: evil },
      { type: "gt", key: evil, value: evil },
      { type: "in", key: evil, value: [evil] },
    ];
    for (const f of filters) {
      const { text, params } = sql(f);
      expect(text).not.toContain("drop");
      expect(JSON.stringify(params)).toContain("drop table");
    }
  });

  it("refuses numbers JSON cannot carry", () => {
    expect(() => sql({ type: "eq", key: "a", value: Number.NaN })).toThrow(RangeError);
    expect(() => sql({ type: "gt", key: "a", value: Number.POSITIVE_INFINITY })).toThrow(RangeError);
  });
});
