/**
 * Retrieval-quality metrics over ranked lists of document ids (pure functions, no I/O).
 *
 * Search returns chunks, several per document: a ranked list of document ids may repeat an id. Every metric here first
 * keeps each id at its first (best) rank and drops the later repeats, so a document counts once and the documents below
 * it move up.
 */

/** The ids in order of first appearance: ["a", "b", "a", "c"] → ["a", "b", "c"]. */
export function dedupeRanked(ranked: readonly string[]): string[] {
  return [...new Set(ranked)];
}

function relevantSet(relevant: readonly string[]): Set<string> {
  const set = new Set(relevant);
  if (set.size === 0) throw new RangeError("a query needs at least one relevant document");
  return set;
}

/** Share of the relevant documents found among the first `k` distinct documents of the ranking (0…1). */
export function recallAtK(ranked: readonly string[], relevant: readonly string[], k: number): number {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be a positive integer, got ${k}`);
  const wanted = relevantSet(relevant);
  let found = 0;
  for (const id of dedupeRanked(ranked).slice(0, k)) if (wanted.has(id)) found++;
  return found / wanted.size;
}

/**
 * 1 / rank of the first relevant document among the distinct documents of the ranking (rank 1 = first), 0 when none is
 * found within the first `k` (default: the whole ranking).
 */
export function reciprocalRank(
  ranked: readonly string[],
  relevant: readonly string[],
  k: number = Number.POSITIVE_INFINITY,
): number {
  if (!(k >= 1)) throw new RangeError(`k must be at least 1, got ${k}`);
  const wanted = relevantSet(relevant);
  const distinct = dedupeRanked(ranked);
  const depth = Math.min(distinct.length, k);
  for (let i = 0; i < depth; i++) if (wanted.has(distinct[i] as string)) return 1 / (i + 1);
  return 0;
}

export interface Run {
  queryId: string;
  /** Document ids, best first; repeats allowed (one per retrieved chunk). */
  ranked: string[];
}

export interface JudgedQuery {
  id: string;
  relevant: readonly string[];
}

export interface QueryScore {
  queryId: string;
  recallAt10: number;
  reciprocalRank: number;
  /** Rank of the first relevant distinct document, null when none was retrieved. */
  firstRelevantRank: number | null;
  /** False when no run was given for the query: it then scores 0, as a search that returned nothing. */
  hasRun: boolean;
}

export interface Evaluation {
  /** Mean over the queries of recall@10. */
  recallAt10: number;
  /** Mean reciprocal rank over the queries (whole ranking). */
  mrr: number;
  perQuery: QueryScore[];
}

/**
 * Scores one run per query and averages over all the judged queries (macro-average). A query without a run counts as
 * an empty ranking; a run for an unknown query or two runs for one query are errors, not silently ignored.
 */
export function evaluate(runs: readonly Run[], queries: readonly JudgedQuery[]): Evaluation {
  if (queries.length === 0) throw new RangeError("no queries to evaluate");
  const byQuery = new Map<string, Run>();
  const known = new Set(queries.map((q) => q.id));
  if (known.size !== queries.length) throw new Error("duplicate query ids");
  for (const run of runs) {
    if (!known.has(run.queryId)) throw new Error(`run for unknown query ${run.queryId}`);
    if (byQuery.has(run.queryId)) throw new Error(`two runs for query ${run.queryId}`);
    byQuery.set(run.queryId, run);
  }
  const perQuery = queries.map((q): QueryScore => {
    const run = byQuery.get(q.id);
    const ranked = run?.ranked ?? [];
    const rr = reciprocalRank(ranked, q.relevant);
    return {
      queryId: q.id,
      recallAt10: recallAtK(ranked, q.relevant, 10),
      reciprocalRank: rr,
      firstRelevantRank: rr > 0 ? Math.round(1 / rr) : null,
      hasRun: run !== undefined,
    };
  });
  const mean = (pick: (s: QueryScore) => number) => perQuery.reduce((sum, s) => sum + pick(s), 0) / perQuery.length;
  return { recallAt10: mean((s) => s.recallAt10), mrr: mean((s) => s.reciprocalRank), perQuery };
}
