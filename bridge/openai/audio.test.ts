import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { TimestampGranularity, TranscriptionFormat } from "../../gen/passerelle/audio/v1/audio_pb.js";
import { CreateTranscriptionResponseSchema } from "../../gen/passerelle/audio/v1/audio_service_pb.js";
import { validateOpenAI } from "../../test/support/openai-schema.js";
import { transcriptionReply, transcriptionRequestFromForm } from "./audio.js";
import { InvalidRequest } from "./invalid-request.js";

const upload = { data: new Uint8Array([1, 2, 3]), fileName: "a.wav" };
const form = (fields: Record<string, string[]>) => new Map(Object.entries({ model: ["whisper-1"], ...fields }));

function refusal(fields: Record<string, string[]>, file: typeof upload | null = upload): InvalidRequest {
  try {
    transcriptionRequestFromForm(form(fields), file ?? undefined);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidRequest);
    return err as InvalidRequest;
  }
  throw new Error("expected a refusal");
}

describe("transcription form", () => {
  it("reads OpenAI's fields, keeps empty ones absent and forwards unknown ones as extras", () => {
    const req = transcriptionRequestFromForm(
      form({
        language: ["fr"],
        prompt: [""],
        response_format: ["verbose_json"],
        temperature: ["0.3"],
        "timestamp_granularities[]": ["word", "segment"],
        stream: ["false"],
        seed: ["7"],
        "include[]": ["a", "b"],
      }),
      upload,
    );
    expect(req).toMatchObject({
      model: "whisper-1",
      file: upload.data,
      fileName: "a.wav",
      language: "fr",
      responseFormat: TranscriptionFormat.VERBOSE_JSON,
      temperature: 0.3,
      timestampGranularities: [TimestampGranularity.WORD, TimestampGranularity.SEGMENT],
      extra: { seed: "7", "include[]": ["a", "b"] },
    });
    expect(req.prompt).toBeUndefined();
    expect(transcriptionRequestFromForm(form({}), upload).responseFormat).toBe(TranscriptionFormat.UNSPECIFIED);
  });

  it("refuses what it cannot read, naming the field", () => {
    expect(refusal({ model: [] }).param).toBe("model");
    expect(refusal({}, null).param).toBe("file");
    expect(refusal({ response_format: ["mp3"] }).param).toBe("response_format");
    expect(refusal({ temperature: ["warm"] }).param).toBe("temperature");
    expect(refusal({ temperature: ["0x1"] }).param).toBe("temperature");
    expect(refusal({ "timestamp_granularities[]": ["sentence"] }).param).toBe("timestamp_granularities");
    expect(refusal({ stream: ["true"] }).param).toBe("stream");
    expect(refusal({ language: ["fr", "en"] }).message).toBe("'language' is given more than once.");
  });
});

describe("transcription reply", () => {
  const res = create(CreateTranscriptionResponseSchema, {
    model: "whisper-1",
    text: "Bonjour.",
    language: "fr",
    duration: 1.5,
    segments: [{ id: 0, start: 0, end: 1.5, text: " Bonjour.", tokens: [5, 6], temperature: 0 }],
    words: [{ word: "Bonjour", start: 0, end: 1 }],
    subtitles: "WEBVTT\n\n",
    usage: { promptTokens: 1, completionTokens: 2, totalTokens: 3, audioSeconds: 1.5, cost: 0.25 },
  });

  it("writes json and verbose_json as OpenAI's schemas, with the gateway's counts beside OpenAI's usage", () => {
    const json = transcriptionReply(res, TranscriptionFormat.JSON);
    validateOpenAI("CreateTranscriptionResponseJson", json.body);
    expect(json.body).toEqual({
      text: "Bonjour.",
      usage: { type: "tokens", input_tokens: 1, output_tokens: 2, total_tokens: 3, seconds: 1.5, cost: 0.25 },
    });
    const verbose = transcriptionReply(res, TranscriptionFormat.VERBOSE_JSON);
    validateOpenAI("CreateTranscriptionResponseVerboseJson", verbose.body);
    expect(verbose.body).toMatchObject({
      task: "transcribe",
      language: "fr",
      duration: 1.5,
      segments: [{ id: 0, seek: 0, start: 0, end: 1.5, text: " Bonjour.", tokens: [5, 6], avg_logprob: 0 }],
      words: [{ word: "Bonjour", start: 0, end: 1 }],
      usage: { type: "duration", seconds: 1.5, output_tokens: 2 },
    });
  });

  it("answers text, SRT and VTT as documents of their own types", () => {
    expect(transcriptionReply(res, TranscriptionFormat.TEXT)).toEqual({
      contentType: "text/plain; charset=utf-8",
      body: "Bonjour.",
    });
    expect(transcriptionReply(res, TranscriptionFormat.SRT).contentType).toBe("application/x-subrip; charset=utf-8");
    expect(transcriptionReply(res, TranscriptionFormat.VTT)).toEqual({
      contentType: "text/vtt; charset=utf-8",
      body: "WEBVTT\n\n",
    });
  });
});
