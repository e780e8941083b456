import { describe, expect, it } from "vitest";
import type { SearchHit } from "./backend.js";
import { reciprocalRankFusion } from "./rrf.js";

const hit = (documentId: string, id: number, method: SearchHit["method"] = "semantic"): SearchHit => ({
  method,
  score: 0,
  chunk: { documentId, id, collectionId: "c", content: "", metadata: {}, createdAt: new Date(0) },
});

describe("reciprocalRankFusion", () => {
  it("sums weighted reciprocal ranks, computed by hand", () => {
    const semantic = [hit("a", 1), hit("b", 1), hit("c", 1)];
    const lexical = [hit("b", 1, "lexical"), hit("d", 1, "lexical")];
    const fused = reciprocalRankFusion(
      [
        { hits: semantic, weight: 1 },
        { hits: lexical, weight: 2 },
      ],
      60,
    );
    // b: 1/62 + 2/61; d: 2/62; a: 1/61; c: 1/63
    expect(fused.map((h) => h.chunk.documentId)).toEqual(["b", "d", "a", "c"]);
    expect(fused[0]?.score).toBeCloseTo(1 / 62 + 2 / 61, 12);
    expect(fused[1]?.score).toBeCloseTo(2 / 62, 12);
    expect(fused.every((h) => h.method === "hybrid")).toBe(true);
  });

  it("keeps chunks whose document id and position would collide if added", () => {
    // The reference system keyed on document_id + chunk id (an integer sum): 1+2 and 2+1 collided.
    const fused = reciprocalRankFusion([{ hits: [hit("1", 2), hit("2", 1)], weight: 1 }], 60);
    expect(fused).toHaveLength(2);
  });

  it("breaks ties by first appearance", () => {
    const fused = reciprocalRankFusion(
      [
        { hits: [hit("x", 1)], weight: 1 },
        { hits: [hit("y", 1)], weight: 1 },
      ],
      10,
    );
    expect(fused.map((h) => h.chunk.documentId)).toEqual(["x", "y"]);
  });
});
