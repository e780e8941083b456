import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { parseBuffer } from "music-metadata";
import { findModel, type RequestContext, sleep } from "./context.js";
import { badRequest, isRecord, SimulatorHttpError, sendJson } from "./http.js";
import { rngFrom, wordPiece } from "./text.js";

/**
 * `POST /v1/audio/transcriptions` as vLLM answers it (`vllm serve openai/whisper-…`): a multipart form with `file`,
 * `model`, `language`, `prompt`, `response_format` (json, text, verbose_json; srt and vtt are refused, as vLLM
 * does), `temperature` and `timestamp_granularities[]`. The transcript is derived from the audio bytes (the same file
 * always "says" the same words, about 2.5 per second of audio), so that a test can rebuild what it should get.
 * vLLM's quirks are kept: the verbose `duration` is a string, `usage` is `{type: "duration", seconds: <int>}`.
 */

/** The uploaded file as the handler sees it. */
export interface UploadedFile {
  name: string;
  type: string;
  size: number;
  data: Uint8Array;
}

/** The form's text fields (a repeated field as a list) and its file; `lastRequest` keeps it without the bytes. */
export type TranscriptionForm = Record<string, string | string[] | UploadedFile>;

/** Reads a multipart/form-data body with undici's parser (behind `Response.formData()`, no extra dependency). */
export async function readFormBody(req: IncomingMessage): Promise<TranscriptionForm> {
  const type = req.headers["content-type"] ?? "";
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  if (!/^multipart\/form-data/i.test(type)) {
    throw badRequest("Unsupported Media Type: Only 'multipart/form-data' is allowed");
  }
  let form: Awaited<ReturnType<Response["formData"]>>;
  try {
    form = await new Response(Buffer.concat(chunks), { headers: { "content-type": type } }).formData();
  } catch (err) {
    throw badRequest(`There was an error parsing the body: ${(err as Error).message}`);
  }
  const out: TranscriptionForm = {};
  for (const [key, value] of form) {
    if (typeof value !== "string") {
      const data = new Uint8Array(await value.arrayBuffer());
      // The bytes stay out of JSON dumps of `stats.lastRequest`.
      out[key] = Object.defineProperty({ name: value.name, type: value.type, size: data.length }, "data", {
        value: data,
        enumerable: false,
      }) as UploadedFile;
      continue;
    }
    const name = key.endsWith("[]") ? key.slice(0, -2) : key;
    const prev = out[name];
    if (key.endsWith("[]")) out[name] = [...(Array.isArray(prev) ? prev : []), value];
    else out[name] = value;
  }
  return out;
}

export interface SimulatedSegment {
  id: number;
  seek: number;
  start: number;
  end: number;
  text: string;
  tokens: number[];
  temperature: number;
  avg_logprob: number;
  compression_ratio: number;
  no_speech_prob: number;
}

export interface SimulatedTranscript {
  text: string;
  segments: SimulatedSegment[];
  words: { word: string; start: number; end: number }[];
}

const WORDS_PER_SECOND = 2.5;
const WORDS_PER_SEGMENT = 10;
const round2 = (x: number) => Math.round(x * 100) / 100;

/** The transcript of `data` lasting `duration` s: words picked by a generator seeded with the bytes' hash. */
export function transcriptOf(data: Uint8Array, duration: number, temperature = 0): SimulatedTranscript {
  const rng = rngFrom(createHash("sha256").update(data).digest("hex"));
  const count = Math.max(1, Math.round(duration * WORDS_PER_SECOND));
  const step = duration / count;
  const words = Array.from({ length: count }, (_, i) => ({
    word: wordPiece(rng, true),
    start: round2(i * step),
    end: round2((i + 1) * step),
  }));
  const segments: SimulatedSegment[] = [];
  for (let i = 0; i < count; i += WORDS_PER_SEGMENT) {
    const part = words.slice(i, i + WORDS_PER_SEGMENT);
    const start = part[0]?.start ?? 0;
    const end = part[part.length - 1]?.end ?? 0;
    segments.push({
      id: segments.length,
      seek: Math.round(start * 100),
      start,
      end,
      // Whisper's segments start with a space; the text is their concatenation, trimmed.
      text: ` ${part.map((w) => w.word).join(" ")}.`,
      tokens: part.map(() => 1000 + Math.floor(rng() * 49_000)),
      temperature,
      avg_logprob: -0.25,
      compression_ratio: 1.2,
      no_speech_prob: 0.01,
    });
  }
  return {
    text: segments
      .map((s) => s.text)
      .join("")
      .trim(),
    segments,
    words,
  };
}

const FORMATS = new Set(["json", "text", "verbose_json", "srt", "vtt"]);

function field(form: TranscriptionForm, name: string): string | undefined {
  const v = form[name];
  return typeof v === "string" ? v : undefined;
}

export async function handleTranscription(ctx: RequestContext, body: unknown): Promise<void> {
  const { opts, cancel } = ctx;
  const form = (isRecord(body) ? body : {}) as TranscriptionForm;
  const model = findModel(opts, field(form, "model"), "transcription");
  ctx.setModel(model.id);
  const file = form.file;
  if (!file || typeof file === "string" || Array.isArray(file)) throw badRequest("file: Field required", "file");
  const format = field(form, "response_format") ?? "json";
  if (!FORMATS.has(format)) {
    throw badRequest("response_format: Input should be 'json', 'text', 'srt', 'verbose_json' or 'vtt'");
  }
  if (format === "srt" || format === "vtt") {
    throw new SimulatorHttpError(400, "Currently only support response_format: `text`, `json` or `verbose_json`");
  }
  if (format === "verbose_json" && model.segmentTimestamps === false) {
    throw new SimulatorHttpError(400, `Currently do not support verbose_json for ${model.id}`);
  }
  const temperature = Number(field(form, "temperature") ?? 0);
  let duration: number | undefined;
  try {
    duration = (await parseBuffer(file.data, undefined, { duration: true })).format.duration;
  } catch {
    // unreadable: refused below
  }
  if (duration === undefined || !Number.isFinite(duration)) {
    throw new SimulatorHttpError(400, "Invalid or unsupported audio file.", "file", "BadRequestError");
  }
  const release = await ctx.acquireSlot(model.id);
  try {
    await sleep(opts.ttftMs, cancel);
  } finally {
    release();
  }
  const t = transcriptOf(file.data, duration, Number.isFinite(temperature) ? temperature : 0);
  const completionTokens = t.segments.reduce((s, seg) => s + seg.tokens.length, 0);
  const granularities = form.timestamp_granularities;
  if (format === "text") {
    ctx.res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
    ctx.res.end(t.text);
  } else if (format === "verbose_json") {
    const words = Array.isArray(granularities) && granularities.includes("word") ? { words: t.words } : {};
    sendJson(ctx.res, 200, {
      duration: String(duration),
      language: field(form, "language") ?? "en",
      text: t.text,
      segments: t.segments,
      ...words,
    });
  } else {
    const usage = opts.omitUsage ? {} : { usage: { type: "duration", seconds: Math.ceil(duration) } };
    sendJson(ctx.res, 200, { text: t.text, ...usage });
  }
  ctx.recordDone(model.id, 0, completionTokens, "stop");
}
