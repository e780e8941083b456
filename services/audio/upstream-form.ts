import { FormData } from "undici";
import { TimestampGranularity } from "../../gen/passerelle/audio/v1/audio_pb.js";
import type { CreateTranscriptionRequest } from "../../gen/passerelle/audio/v1/audio_service_pb.js";
import { UpstreamError } from "../inference/index.js";

/**
 * Pure translations between the transcription protos and the OpenAI-compatible multipart/JSON of upstreams (vLLM's
 * `/v1/audio/transcriptions`). The upstream is asked for `json` or `verbose_json` only, whatever the client wants:
 * text is the JSON's text, and SRT/VTT are written by the gateway from the verbose segments (vLLM answers neither).
 */

export type UpstreamFormat = "json" | "verbose_json";

/** The form of one upstream call; built per attempt (the model name is the provider's). Only what was set is sent. */
export function upstreamTranscriptionForm(
  req: CreateTranscriptionRequest,
  audio: Blob,
  upstreamModel: string,
  format: UpstreamFormat,
): FormData {
  const form = new FormData();
  for (const [k, v] of Object.entries(req.extra ?? {})) {
    // Extras never replace the fields the gateway decides on.
    if (v === null || v === undefined || RESERVED.has(k)) continue;
    if (Array.isArray(v)) for (const item of v) form.append(k, formValue(item));
    else form.append(k, formValue(v));
  }
  form.append("file", audio, req.fileName || "audio");
  form.append("model", upstreamModel);
  form.append("response_format", format);
  if (req.language !== undefined) form.append("language", req.language);
  if (req.prompt !== undefined) form.append("prompt", req.prompt);
  if (req.temperature !== undefined) form.append("temperature", String(req.temperature));
  if (req.user !== undefined) form.append("user", req.user);
  if (format === "verbose_json") {
    for (const g of new Set(req.timestampGranularities)) {
      if (g === TimestampGranularity.WORD) form.append("timestamp_granularities[]", "word");
      if (g === TimestampGranularity.SEGMENT) form.append("timestamp_granularities[]", "segment");
    }
  }
  return form;
}

const RESERVED = new Set([
  "file",
  "model",
  "response_format",
  "language",
  "prompt",
  "temperature",
  "user",
  "stream",
  "timestamp_granularities",
  "timestamp_granularities[]",
]);

function formValue(v: unknown): string {
  return typeof v === "string" ? v : JSON.stringify(v);
}

export interface Segment {
  id: number;
  seek: number;
  start: number;
  end: number;
  text: string;
  tokens: number[];
  temperature: number;
  avgLogprob: number;
  compressionRatio: number;
  noSpeechProb: number;
}

export interface Word {
  word: string;
  start: number;
  end: number;
}

/** What the gateway keeps of an upstream answer. */
export interface UpstreamTranscript {
  text: string;
  /** The model's detected language (verbose answers), if any. */
  language?: string;
  segments: Segment[];
  words: Word[];
  /** The upstream's token counts, when it gives them (OpenAI's `tokens` usage; vLLM gives only seconds). */
  inputTokens?: number;
  outputTokens?: number;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const num = (v: unknown, fallback = 0): number => {
  // vLLM writes the verbose `duration` as a string; other numbers might come the same way.
  const n = typeof v === "string" ? Number(v) : v;
  return typeof n === "number" && Number.isFinite(n) ? n : fallback;
};
const count = (v: unknown): number | undefined =>
  typeof v === "number" && Number.isInteger(v) && v >= 0 ? v : undefined;

function protocol(message: string): UpstreamError {
  return new UpstreamError({ kind: "protocol", message });
}

function segmentOf(s: unknown, i: number): Segment {
  if (!isObject(s) || typeof s.text !== "string") throw protocol(`upstream sent an invalid segment at ${i}`);
  const tokens = Array.isArray(s.tokens) ? s.tokens.filter((t): t is number => count(t) !== undefined) : [];
  return {
    id: count(s.id) ?? i,
    seek: count(s.seek) ?? 0,
    start: num(s.start),
    end: num(s.end),
    text: s.text,
    tokens,
    temperature: num(s.temperature),
    avgLogprob: num(s.avg_logprob),
    compressionRatio: num(s.compression_ratio),
    noSpeechProb: num(s.no_speech_prob),
  };
}

/** Reads an upstream `json` or `verbose_json` answer; anything without a text is a protocol failure. */
export function transcriptFromJson(body: unknown): UpstreamTranscript {
  if (!isObject(body) || typeof body.text !== "string") throw protocol("upstream sent no transcription text");
  const segments = Array.isArray(body.segments) ? body.segments.map(segmentOf) : [];
  const words = Array.isArray(body.words)
    ? body.words.filter(isObject).map((w) => ({ word: String(w.word ?? ""), start: num(w.start), end: num(w.end) }))
    : [];
  const out: UpstreamTranscript = { text: body.text, segments, words };
  if (typeof body.language === "string" && body.language) out.language = body.language;
  const usage = isObject(body.usage) ? body.usage : undefined;
  if (usage) {
    const input = count(usage.input_tokens) ?? count(usage.prompt_tokens);
    const output = count(usage.output_tokens) ?? count(usage.completion_tokens);
    if (output !== undefined) {
      out.outputTokens = output;
      out.inputTokens = input ?? 0;
    }
  }
  return out;
}

/**
 * Whether an upstream refusal says it cannot answer `verbose_json` (vLLM before 0.10, or a model without segment
 * timestamps): the gateway then asks for `json` and times the whole text as one segment.
 */
export function refusesVerbose(err: unknown): boolean {
  if (!(err instanceof UpstreamError) || err.failure.kind !== "http") return false;
  const { status, message } = err.failure;
  return (status === 400 || status === 422) && /verbose_json|response_format/i.test(message);
}
