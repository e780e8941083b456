import { create, type JsonObject } from "@bufbuild/protobuf";
import { TimestampGranularity, TranscriptionFormat } from "../../gen/passerelle/audio/v1/audio_pb.js";
import {
  type CreateTranscriptionRequest,
  CreateTranscriptionRequestSchema,
  type CreateTranscriptionResponse,
} from "../../gen/passerelle/audio/v1/audio_service_pb.js";
import { InvalidRequest } from "./invalid-request.js";
import { impactJson } from "./usage.js";

/**
 * Pure translations between OpenAI's `POST /v1/audio/transcriptions` (a multipart form) and the audio protos. The
 * answer follows OpenAI: `json` → `{text, usage}` (token usage), `verbose_json` → `{task, language, duration, text,
 * segments, usage}` (duration usage), `text`, `srt` and `vtt` as plain documents. Every usage also carries the
 * gateway's token counts, audio seconds, cost and carbon.
 */

/** The uploaded file, as the route read it. */
export interface AudioUpload {
  data: Uint8Array;
  fileName: string;
}

const FORMATS: Readonly<Record<string, TranscriptionFormat>> = {
  json: TranscriptionFormat.JSON,
  text: TranscriptionFormat.TEXT,
  verbose_json: TranscriptionFormat.VERBOSE_JSON,
  srt: TranscriptionFormat.SRT,
  vtt: TranscriptionFormat.VTT,
};
const GRANULARITIES: Readonly<Record<string, TimestampGranularity>> = {
  segment: TimestampGranularity.SEGMENT,
  word: TimestampGranularity.WORD,
};
/** The fields read here; any other is forwarded upstream untouched (`extra`). */
const KNOWN = new Set([
  "model",
  "language",
  "prompt",
  "response_format",
  "temperature",
  "user",
  "stream",
  "timestamp_granularities",
  "timestamp_granularities[]",
]);

/** A field given at most once; empty values (an HTML form sends every input) are absent. */
function single(fields: ReadonlyMap<string, string[]>, name: string): string | undefined {
  const values = (fields.get(name) ?? []).filter((v) => v !== "");
  if (values.length > 1) throw new InvalidRequest(`'${name}' is given more than once.`, name);
  return values[0];
}

/** Reads the form's fields and file. Throws InvalidRequest (400 with `param`) for what cannot be read. */
export function transcriptionRequestFromForm(
  fields: ReadonlyMap<string, string[]>,
  upload: AudioUpload | undefined,
): CreateTranscriptionRequest {
  const model = single(fields, "model");
  if (!model) throw new InvalidRequest("'model' is required.", "model");
  if (!upload) throw new InvalidRequest("'file' is required: send the audio as a multipart/form-data file.", "file");
  const req = create(CreateTranscriptionRequestSchema, { model, file: upload.data, fileName: upload.fileName });
  const format = single(fields, "response_format");
  if (format !== undefined) {
    const f = FORMATS[format];
    if (f === undefined) {
      throw new InvalidRequest(
        `'response_format' must be one of json, text, verbose_json, srt or vtt, not '${format}'.`,
        "response_format",
      );
    }
    req.responseFormat = f;
  }
  const temperature = single(fields, "temperature");
  if (temperature !== undefined) {
    const t = Number(temperature);
    if (!/^\s*[\d.eE+-]+\s*$/.test(temperature) || !Number.isFinite(t)) {
      throw new InvalidRequest("'temperature' must be a number between 0 and 1.", "temperature");
    }
    req.temperature = t;
  }
  const stream = single(fields, "stream");
  if (stream !== undefined && stream !== "false") {
    throw new InvalidRequest("Streamed transcriptions are not supported; leave 'stream' unset.", "stream");
  }
  for (const name of ["language", "prompt", "user"] as const) {
    const v = single(fields, name);
    if (v !== undefined) req[name] = v;
  }
  const granularities = [
    ...(fields.get("timestamp_granularities[]") ?? []),
    ...(fields.get("timestamp_granularities") ?? []),
  ].filter((v) => v !== "");
  for (const g of granularities) {
    const value = GRANULARITIES[g];
    if (value === undefined) {
      throw new InvalidRequest(
        `'timestamp_granularities' holds 'word' or 'segment', not '${g}'.`,
        "timestamp_granularities",
      );
    }
    req.timestampGranularities.push(value);
  }
  for (const [k, values] of fields) {
    if (KNOWN.has(k)) continue;
    const present = values.filter((v) => v !== "");
    if (present.length === 0) continue;
    req.extra ??= {};
    (req.extra as JsonObject)[k] = present.length === 1 ? (present[0] as string) : present;
  }
  return req;
}

/** The HTTP answer of a transcription in the format asked for. */
export function transcriptionReply(
  res: CreateTranscriptionResponse,
  format: TranscriptionFormat,
): { contentType: string; body: string | JsonObject } {
  const u = res.usage;
  const tokens = {
    input_tokens: u?.promptTokens ?? 0,
    output_tokens: u?.completionTokens ?? 0,
    total_tokens: u?.totalTokens ?? 0,
  };
  const seconds = u?.audioSeconds ?? res.duration;
  const impact = u ? impactJson(u) : {};
  switch (format) {
    case TranscriptionFormat.TEXT:
      return { contentType: "text/plain; charset=utf-8", body: res.text };
    case TranscriptionFormat.SRT:
      return { contentType: "application/x-subrip; charset=utf-8", body: res.subtitles };
    case TranscriptionFormat.VTT:
      return { contentType: "text/vtt; charset=utf-8", body: res.subtitles };
    case TranscriptionFormat.VERBOSE_JSON: {
      const body: JsonObject = {
        task: "transcribe",
        language: res.language,
        duration: res.duration,
        text: res.text,
        segments: res.segments.map((s) => ({
          id: s.id,
          seek: s.seek,
          start: s.start,
          end: s.end,
          text: s.text,
          tokens: s.tokens,
          temperature: s.temperature,
          avg_logprob: s.avgLogprob,
          compression_ratio: s.compressionRatio,
          no_speech_prob: s.noSpeechProb,
        })),
        usage: { type: "duration", seconds, ...tokens, ...impact },
      };
      if (res.words.length > 0) body.words = res.words.map((w) => ({ word: w.word, start: w.start, end: w.end }));
      return { contentType: "application/json; charset=utf-8", body };
    }
    default:
      return {
        contentType: "application/json; charset=utf-8",
        body: { text: res.text, usage: { type: "tokens", ...tokens, seconds, ...impact } },
      };
  }
}
