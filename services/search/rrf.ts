import type { SearchHit } from "./backend.js";

/** The key that identifies a chunk across rankings: document id and position (never their sum). */
export const chunkKey = (h: { chunk: { documentId: string; id: number } }) => `${h.chunk.documentId}#${h.chunk.id}`;

/**
 * Reciprocal rank fusion: each chunk scores Σ wᵢ / (k + rankᵢ) over the rankings it appears in (rank from 1), then
 * the fused list is sorted by that score, ties broken by the first ranking's order. Used by backends that cannot
 * fuse inside the engine; PostgreSQL does the same computation in SQL.
 */
export function reciprocalRankFusion(
  rankings: { hits: readonly SearchHit[]; weight: number }[],
  k: number,
): SearchHit[] {
  const fused = new Map<string, { hit: SearchHit; score: number; first: number }>();
  let order = 0;
  for (const { hits, weight } of rankings) {
    hits.forEach((hit, i) => {
      const key = chunkKey(hit);
      const entry = fused.get(key);
      const add = weight / (k + i + 1);
      if (entry) entry.score += add;
      else fused.set(key, { hit, score: add, first: order++ });
    });
  }
  return [...fused.values()]
    .sort((a, b) => b.score - a.score || a.first - b.first)
    .map(({ hit, score }) => ({ ...hit, method: "hybrid", score }));
}
