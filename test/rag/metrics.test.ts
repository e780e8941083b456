import { describe, expect, it } from "vitest";
import { dedupeRanked, evaluate, recallAtK, reciprocalRank } from "./metrics.js";

describe("dedupeRanked", () => {
  it("keeps each document at its first rank", () => {
    expect(dedupeRanked(["a", "b", "a", "c", "b", "d"])).toEqual(["a", "b", "c", "d"]);
    expect(dedupeRanked([])).toEqual([]);
  });
});

describe("recallAtK", () => {
  it("counts the relevant documents among the first k", () => {
    // relevant {a, c, e}; top 3 = b a c → 2 of 3
    expect(recallAtK(["b", "a", "c", "d", "e"], ["a", "c", "e"], 3)).toBeCloseTo(2 / 3);
    expect(recallAtK(["b", "a", "c", "d", "e"], ["a", "c", "e"], 5)).toBe(1);
    expect(recallAtK(["b", "a", "c", "d", "e"], ["a", "c", "e"], 1)).toBe(0);
  });

  it("counts a document once however many of its chunks are retrieved", () => {
    // Chunks: a a a b c → distinct a b c; with k = 2 the top is a b, not a a.
    expect(recallAtK(["a", "a", "a", "b", "c"], ["a", "b"], 2)).toBe(1);
    // Repeats of a relevant document do not inflate recall.
    expect(recallAtK(["a", "a", "a"], ["a", "b"], 10)).toBe(0.5);
  });

  it("pushes a document below k when repeats are removed above it", () => {
    // Without dedup the top 3 would be x x x; with dedup it is x y z.
    expect(recallAtK(["x", "x", "x", "y", "z"], ["z"], 3)).toBe(1);
  });

  it("is 0 for an empty ranking and ignores repeated relevant ids", () => {
    expect(recallAtK([], ["a"], 10)).toBe(0);
    expect(recallAtK(["a"], ["a", "a"], 10)).toBe(1);
  });

  it("rejects a bad k or an empty relevant set", () => {
    expect(() => recallAtK(["a"], ["a"], 0)).toThrow(RangeError);
    expect(() => recallAtK(["a"], ["a"], 2.5)).toThrow(RangeError);
    expect(() => recallAtK(["a"], [], 10)).toThrow(RangeError);
  });
});

describe("reciprocalRank", () => {
  it("is 1 / rank of the first relevant document", () => {
    expect(reciprocalRank(["a", "b", "c"], ["a"])).toBe(1);
    expect(reciprocalRank(["a", "b", "c"], ["c", "b"])).toBe(0.5);
    expect(reciprocalRank(["a", "b", "c", "d"], ["d"])).toBe(0.25);
    expect(reciprocalRank(["a", "b"], ["z"])).toBe(0);
    expect(reciprocalRank([], ["z"])).toBe(0);
  });

  it("ranks distinct documents, not chunks", () => {
    // Chunks a a b b c → distinct a b c: c is 3rd, not 5th.
    expect(reciprocalRank(["a", "a", "b", "b", "c"], ["c"])).toBeCloseTo(1 / 3);
  });

  it("can stop at a depth", () => {
    expect(reciprocalRank(["a", "b", "c"], ["c"], 2)).toBe(0);
    expect(reciprocalRank(["a", "b", "c"], ["c"], 3)).toBeCloseTo(1 / 3);
    expect(() => reciprocalRank(["a"], ["a"], 0)).toThrow(RangeError);
  });
});

describe("evaluate", () => {
  const queries = [
    { id: "q1", relevant: ["a", "b"] },
    { id: "q2", relevant: ["c"] },
    { id: "q3", relevant: ["d", "e", "f", "g"] },
  ];

  it("macro-averages recall@10 and MRR over the queries", () => {
    const result = evaluate(
      [
        // q1: a at 1, b at 3 (after dedup: a x b) → recall 1, RR 1
        { queryId: "q1", ranked: ["a", "a", "x", "b"] },
        // q2: c at 2 → recall 1, RR 1/2
        { queryId: "q2", ranked: ["x", "c", "y"] },
        // q3: d at 11 (beyond 10), e at 4 → recall@10 1/4, RR 1/4
        { queryId: "q3", ranked: ["p1", "p2", "p3", "e", "p5", "p6", "p7", "p8", "p9", "p10", "d"] },
      ],
      queries,
    );
    expect(result.recallAt10).toBeCloseTo((1 + 1 + 0.25) / 3);
    expect(result.mrr).toBeCloseTo((1 + 0.5 + 0.25) / 3);
    expect(result.perQuery).toEqual([
      { queryId: "q1", recallAt10: 1, reciprocalRank: 1, firstRelevantRank: 1, hasRun: true },
      { queryId: "q2", recallAt10: 1, reciprocalRank: 0.5, firstRelevantRank: 2, hasRun: true },
      { queryId: "q3", recallAt10: 0.25, reciprocalRank: 0.25, firstRelevantRank: 4, hasRun: true },
    ]);
  });

  it("scores a query without a run as an empty ranking", () => {
    const result = evaluate([{ queryId: "q2", ranked: ["c"] }], queries);
    expect(result.recallAt10).toBeCloseTo(1 / 3);
    expect(result.mrr).toBeCloseTo(1 / 3);
    expect(result.perQuery[0]).toEqual({
      queryId: "q1",
      recallAt10: 0,
      reciprocalRank: 0,
      firstRelevantRank: null,
      hasRun: false,
    });
  });

  it("rejects runs for unknown queries, duplicate runs and an empty query set", () => {
    expect(() => evaluate([{ queryId: "nope", ranked: [] }], queries)).toThrow(/unknown query/);
    expect(() =>
      evaluate(
        [
          { queryId: "q1", ranked: [] },
          { queryId: "q1", ranked: [] },
        ],
        queries,
      ),
    ).toThrow(/two runs/);
    expect(() => evaluate([], [])).toThrow(RangeError);
  });
});
