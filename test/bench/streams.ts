import { fx, signed, summarize } from "./common.js";
import type { StreamRecord } from "./load.js";

/**
 * Stream fidelity, frame by frame, against a reference stream read directly from the simulator in the same run.
 *
 * A *frame* is one SSE event with a JSON `data:` payload (`data: [DONE]` is not a frame; it only marks a complete
 * stream). The simulator's text is deterministic (same messages, same words), but a chunk does not carry its
 * index and a word may repeat (64-word vocabulary), so a frame is identified by (delta.role, delta.content,
 * finish_reason) and received frames are aligned in order against the reference:
 *   - a frame equal to the next expected one matches it;
 *   - else, a frame whose content is the concatenation of the next 2+ expected contents is *merged* (those expected
 *     frames are counted as merged: they did not arrive as frames of their own);
 *   - else it matches the earliest unmatched expected frame with that identity: if that one lies before the newest
 *     frame matched so far, the frame is *reordered*; if it lies ahead, the expected frames skipped stay pending
 *     (they may still come, reordered);
 *   - a frame matching nothing (an error event, a usage chunk, a duplicate) is *extra*.
 * Expected frames never matched are *lost*. Every damaged stream shows up; only the kind may blur when words
 * repeat: a frame lost just before a later occurrence of its own word may be counted as that occurrence lost
 * (same count) or as one lost plus one reordered.
 *
 * *Bunched*: the simulator sends the role chunk and the first token together, then one token chunk every
 * `interTokenMs` (5 ms); each token frame from the second one on is due 5 ms after the previous frame. Such a frame
 * is bunched when the client receives it less than 1 ms after the previous frame (both received as frames of their
 * own): it was held somewhere, then released in a burst with the previous one. Arrival time = when the body chunk
 * completing the frame reached the client (undici's onResponseData). The direct run shows what the simulator and
 * the client alone do on this machine; compare with it.
 */

export const BUNCHED_BELOW_MS = 1;

export interface Frame {
  /** Arrival time (performance.now()). */
  at: number;
  /** Identity for alignment: JSON of [role, content, finish_reason]. */
  key: string;
  content: string;
  error: boolean;
}

export interface ParsedStream {
  frames: Frame[];
  done: boolean;
  /** Arrival of the first frame, from the request's start (ms). */
  ttfbMs: number;
  totalMs: number;
  status: number;
  transportError?: string;
}

export function parseStream(rec: StreamRecord): ParsedStream {
  const decoder = new TextDecoder();
  const frames: Frame[] = [];
  let done = false;
  let buffer = "";
  for (let i = 0; i < rec.chunks.length; i++) {
    buffer += decoder.decode(rec.chunks[i], { stream: true });
    const at = rec.at[i] as number;
    let cut = buffer.indexOf("\n\n");
    while (cut >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      cut = buffer.indexOf("\n\n");
      const data = block
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(l.startsWith("data: ") ? 6 : 5))
        .join("\n");
      if (data === "") continue;
      if (data === "[DONE]") {
        done = true;
        continue;
      }
      frames.push(frameOf(data, at));
    }
  }
  const first = frames[0]?.at ?? Number.NaN;
  return {
    frames,
    done,
    ttfbMs: first - rec.start,
    totalMs: rec.end - rec.start,
    status: rec.status,
    transportError: rec.error,
  };
}

function frameOf(data: string, at: number): Frame {
  try {
    const o = JSON.parse(data) as {
      error?: unknown;
      choices?: { delta?: { role?: string; content?: string | null }; finish_reason?: string | null }[];
    };
    if (o.error !== undefined) return { at, key: `error:${data}`, content: "", error: true };
    const c = o.choices?.[0];
    if (!c) return { at, key: `other:${data}`, content: "", error: false };
    const content = c.delta?.content ?? "";
    return {
      at,
      key: JSON.stringify([c.delta?.role ?? null, content, c.finish_reason ?? null]),
      content,
      error: false,
    };
  } catch {
    return { at, key: `invalid:${data}`, content: "", error: true };
  }
}

export interface Fidelity {
  expected: number;
  received: number;
  lost: number;
  merged: number;
  reordered: number;
  extra: number;
  errors: number;
  /** Token frames due 5 ms after the previous one, received with it as frames of their own. */
  paced: number;
  bunched: number;
  complete: boolean;
}

/** Compares one received stream with the reference (see the module comment for the definitions). */
export function fidelity(reference: readonly Frame[], got: ParsedStream): Fidelity {
  const n = reference.length;
  const matchedBy = new Array<number>(n).fill(-1); // expected index → received index (-1: never; -2: merged)
  let p = 0;
  let newest = -1;
  let merged = 0;
  let reordered = 0;
  let extra = 0;
  let errors = 0;
  const recv = got.frames;
  for (let j = 0; j < recv.length; j++) {
    const r = recv[j] as Frame;
    if (r.error) errors++;
    while (p < n && matchedBy[p] !== -1) p++;
    if (p < n && (reference[p] as Frame).key === r.key) {
      matchedBy[p] = j;
      if (p < newest) reordered++;
      newest = Math.max(newest, p);
      p++;
      continue;
    }
    // Merged: the content of the next expected frames, two or more of them, in one frame.
    if (p < n && r.content.length > 0 && !r.error) {
      let acc = "";
      let q = p;
      while (q < n && matchedBy[q] === -1 && acc.length < r.content.length) acc += (reference[q++] as Frame).content;
      if (acc === r.content && q - p >= 2) {
        for (let k = p; k < q; k++) matchedBy[k] = -2;
        merged += q - p;
        newest = Math.max(newest, q - 1);
        p = q;
        continue;
      }
    }
    let k = -1;
    for (let i = 0; i < n; i++) {
      if (matchedBy[i] === -1 && (reference[i] as Frame).key === r.key) {
        k = i;
        break;
      }
    }
    if (k < 0) {
      extra++;
      continue;
    }
    matchedBy[k] = j;
    if (k < newest) reordered++;
    newest = Math.max(newest, k);
  }
  let paced = 0;
  let bunched = 0;
  for (let k = 2; k < n; k++) {
    const a = matchedBy[k - 1] as number;
    const b = matchedBy[k] as number;
    if (a < 0 || b < 0 || b < a) continue;
    paced++;
    if ((recv[b] as Frame).at - (recv[a] as Frame).at < BUNCHED_BELOW_MS) bunched++;
  }
  return {
    expected: n,
    received: recv.length,
    lost: matchedBy.filter((m) => m === -1).length,
    merged,
    reordered,
    extra,
    errors,
    paced,
    bunched,
    complete: got.done && got.status === 200 && !got.transportError,
  };
}

export interface FidelityTotals {
  streams: number;
  incomplete: number;
  expected: number;
  received: number;
  lost: number;
  merged: number;
  reordered: number;
  extra: number;
  errors: number;
  paced: number;
  bunched: number;
  bunchedPct: number;
}

export function addUp(all: readonly Fidelity[]): FidelityTotals {
  const sum = (f: (x: Fidelity) => number) => all.reduce((a, x) => a + f(x), 0);
  const paced = sum((x) => x.paced);
  const bunched = sum((x) => x.bunched);
  return {
    streams: all.length,
    incomplete: all.filter((x) => !x.complete).length,
    expected: sum((x) => x.expected),
    received: sum((x) => x.received),
    lost: sum((x) => x.lost),
    merged: sum((x) => x.merged),
    reordered: sum((x) => x.reordered),
    extra: sum((x) => x.extra),
    errors: sum((x) => x.errors),
    paced,
    bunched,
    bunchedPct: paced > 0 ? (100 * bunched) / paced : Number.NaN,
  };
}

/** A stream table's "added p50 / p99" cell: `x` − `direct` at each percentile ("—" on the direct row itself). */
export function addedPair(
  x: { p50: number; p99: number },
  direct: { p50: number; p99: number },
  isDirect: boolean,
  digits = 2,
): string {
  return isDirect ? "—" : `${signed(x.p50 - direct.p50, digits)} / ${signed(x.p99 - direct.p99, digits)}`;
}

/** A stream table's frame columns: what arrived, what was damaged, and the bunched share. */
export function frameColumns(f: FidelityTotals) {
  return {
    frames: `${f.received}/${f.expected}`,
    lost: f.lost,
    merged: f.merged,
    reordered: f.reordered,
    "extra/err": `${f.extra}/${f.errors}`,
    incomplete: f.incomplete,
    "bunched %": fx(f.bunchedPct, 2),
  };
}

/** What a batch of streams did, checked against `reference`: time to first frame, total time, frame fidelity. */
export function streamOutcome(recs: readonly StreamRecord[], reference: readonly Frame[]) {
  const parsed = recs.map(parseStream);
  return {
    streams: parsed.length,
    ttfb: summarize(parsed.map((p) => p.ttfbMs).filter(Number.isFinite)),
    total: summarize(parsed.map((p) => p.totalMs)),
    fidelity: addUp(parsed.map((p) => fidelity(reference, p))),
  };
}
