/**
 * SubRip and WebVTT documents from timed segments, as OpenAI's transcription API writes them: one cue per segment,
 * numbered from 1 in SRT, under a `WEBVTT` header in VTT. Built by the gateway because vLLM answers neither format.
 */

export interface Cue {
  start: number;
  end: number;
  text: string;
}

/** `HH:MM:SS<sep>mmm` for `seconds` (negative and non-finite values read as 0). */
export function timestamp(seconds: number, sep: "," | "."): string {
  const ms = Math.round(Math.max(0, Number.isFinite(seconds) ? seconds : 0) * 1000);
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = Math.floor((ms % 60_000) / 1000);
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${pad(h)}:${pad(m)}:${pad(s)}${sep}${pad(ms % 1000, 3)}`;
}

/**
 * A cue's text on its lines: trimmed, blank lines dropped (a blank line ends a cue in both formats) and, for VTT,
 * the `-->` arrow escaped (it would start a new timing line).
 */
function cueText(text: string, vtt: boolean): string {
  const lines = text
    .trim()
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
  const joined = lines.join("\n");
  return vtt ? joined.replaceAll("-->", "--&gt;") : joined;
}

export function toSrt(cues: readonly Cue[]): string {
  return cues
    .map((c, i) => `${i + 1}\n${timestamp(c.start, ",")} --> ${timestamp(c.end, ",")}\n${cueText(c.text, false)}\n\n`)
    .join("");
}

export function toVtt(cues: readonly Cue[]): string {
  const body = cues
    .map((c) => `${timestamp(c.start, ".")} --> ${timestamp(c.end, ".")}\n${cueText(c.text, true)}\n\n`)
    .join("");
  return `WEBVTT\n\n${body}`;
}
