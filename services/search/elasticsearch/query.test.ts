import { describe, expect, it } from "vitest";
import { chunkDocument, encodeNumber } from "./mapping.js";
import { metadataQuery } from "./query.js";

const n = encodeNumber;

describe("encodeNumber", () => {
  it("orders like the numbers it encodes", () => {
    const numbers = [-1e308, -1234.5, -2, -1, -0.5, -Number.MIN_VALUE, 0, Number.MIN_VALUE, 0.5, 1, 2, 3.25, 10, 1e21];
    const shuffled = [...numbers].reverse().map(n);
    // Keyword order (UTF-16 code units of hex digits = byte order) must be the numeric order.
    expect([...shuffled].sort()).toEqual(numbers.map(n));
  });

  it("gives one form to 0 and -0, and to 1 and 1.0", () => {
    expect(n(-0)).toBe(n(0));
    expect(n(1)).toBe(n(1.0));
    expect(n(1)).toMatch(/^[0-9a-f]{16}$/);
  });

  it("refuses values JSON cannot hold", () => {
    expect(() => n(Number.NaN)).toThrow(RangeError);
    expect(() => n(Number.POSITIVE_INFINITY)).toThrow(RangeError);
  });
});

describe("metadataQuery", () => {
  it("compares each type in its own field", () => {
    expect(metadataQuery({ type: "eq", key: "dept", value: "finance" })).toEqual({
      term: { "metadata_string.dept": "finance" },
    });
    expect(metadataQuery({ type: "eq", key: "year", value: 2020 })).toEqual({
      term: { "metadata_number.year": n(2020) },
    });
    expect(metadataQuery({ type: "eq", key: "draft", value: false })).toEqual({
      term: { "metadata_boolean.draft": "false" },
    });
  });

  it("negates ne and nin with must_not, which also matches chunks without the key", () => {
    expect(metadataQuery({ type: "ne", key: "dept", value: "finance" })).toEqual({
      bool: { must_not: [{ term: { "metadata_string.dept": "finance" } }] },
    });
    expect(metadataQuery({ type: "nin", key: "year", value: [2020, 2021] })).toEqual({
      bool: { must_not: [{ terms: { "metadata_number.year": [n(2020), n(2021)] } }] },
    });
  });

  it("splits an in list of mixed types into one terms per type", () => {
    expect(metadataQuery({ type: "in", key: "k", value: ["a", 1, "b", true] })).toEqual({
      bool: {
        should: [
          { terms: { "metadata_string.k": ["a", "b"] } },
          { terms: { "metadata_number.k": [n(1)] } },
          { terms: { "metadata_boolean.k": ["true"] } },
        ],
        minimum_should_match: 1,
      },
    });
  });

  it("turns ranges into range queries on the typed field", () => {
    expect(metadataQuery({ type: "gte", key: "year", value: 2020 })).toEqual({
      range: { "metadata_number.year": { gte: n(2020) } },
    });
    expect(metadataQuery({ type: "lt", key: "date", value: "2024-06-01" })).toEqual({
      range: { "metadata_string.date": { lt: "2024-06-01" } },
    });
    expect(metadataQuery({ type: "gt", key: "ok", value: false })).toEqual({
      range: { "metadata_boolean.ok": { gt: "false" } },
    });
  });

  it("nests and/or as bool filter / should", () => {
    expect(
      metadataQuery({
        type: "and",
        filters: [
          { type: "eq", key: "dept", value: "hr" },
          {
            type: "or",
            filters: [
              { type: "lt", key: "year", value: 2000 },
              { type: "eq", key: "archived", value: true },
            ],
          },
        ],
      }),
    ).toEqual({
      bool: {
        filter: [
          { term: { "metadata_string.dept": "hr" } },
          {
            bool: {
              should: [
                { range: { "metadata_number.year": { lt: n(2000) } } },
                { term: { "metadata_boolean.archived": "true" } },
              ],
              minimum_should_match: 1,
            },
          },
        ],
      },
    });
  });

  it("keeps the identities of empty compounds and lists, as PostgreSQL does", () => {
    expect(metadataQuery({ type: "and", filters: [] })).toEqual({ match_all: {} });
    expect(metadataQuery({ type: "or", filters: [] })).toEqual({ match_none: {} });
    expect(metadataQuery({ type: "in", key: "k", value: [] })).toEqual({ match_none: {} });
    expect(metadataQuery({ type: "nin", key: "k", value: [] })).toEqual({ match_all: {} });
  });
});

describe("chunkDocument", () => {
  it("writes the text in its language's field and each metadata value in its type's field", () => {
    const doc = chunkDocument(
      {
        documentId: "d",
        id: 3,
        collectionId: "c",
        content: "L'été",
        metadata: { dept: "hr", year: 2020, draft: true },
        embedding: [1, 0],
        createdAt: new Date("2026-01-02T03:04:05.000Z"),
      },
      "french",
    );
    expect(doc).toEqual({
      collection_id: "c",
      document_id: "d",
      chunk_id: 3,
      language: "french",
      content_french: "L'été",
      metadata: { dept: "hr", year: 2020, draft: true },
      metadata_string: { dept: "hr" },
      metadata_number: { year: n(2020) },
      metadata_boolean: { draft: "true" },
      created: "2026-01-02T03:04:05.000Z",
      embedding: [1, 0],
    });
  });

  it("refuses a language it has no analyzer for", () => {
    const chunk = {
      documentId: "d",
      id: 1,
      collectionId: "c",
      content: "x",
      metadata: {},
      embedding: [1],
      createdAt: new Date(0),
    };
    expect(() => chunkDocument(chunk, "klingon")).toThrow(/unsupported text-search language: klingon/);
  });
});
