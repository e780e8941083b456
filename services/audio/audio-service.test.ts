import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { TimestampGranularity, TranscriptionFormat } from "../../gen/passerelle/audio/v1/audio_pb.js";
import { AudioService } from "../../gen/passerelle/audio/v1/audio_service_pb.js";
import { ErrorInfoSchema } from "../../gen/passerelle/errors/v1/error_info_pb.js";
import { wavFile } from "../../test/support/audio.js";
import { clientAs, TEST_PRINCIPAL } from "../../test/support/principal.js";
import { transcriptOf } from "../../test/upstream/audio.js";
import { type Simulator, startSimulator } from "../../test/upstream/simulator.js";
import { DEFAULT_MODELS } from "../../test/upstream/types.js";
import type { AdmitInput, Governor, Outcome } from "../governance/index.js";
import { type ChatModel, createUpstreamClient, type ProviderRoute, type UpstreamClient } from "../inference/index.js";
import { createProviderRouter } from "../inference/provider-router.js";
import { modelNotFound } from "../models/registry.js";
import { countTokens } from "../platform/tokenizer.js";
import { createAudioService } from "./audio-service.js";

/**
 * AudioService through a Connect client over the router transport, with the real upstream client against two
 * simulators (the project's vLLM stand-in) and a governor that records what it is told.
 */

const principal = TEST_PRINCIPAL;

const SIM_MODELS = [
  ...DEFAULT_MODELS,
  { id: "sim-whisper", maxModelLen: 448, kind: "transcription" as const },
  { id: "sim-asr-plain", maxModelLen: 448, kind: "transcription" as const, segmentTimestamps: false },
];

describe("AudioService", () => {
  let sims: Simulator[];
  let upstream: UpstreamClient;
  const admitted: AdmitInput[] = [];
  const finished: Outcome[] = [];

  beforeAll(async () => {
    sims = await Promise.all([0, 1].map(() => startSimulator({ models: SIM_MODELS })));
    upstream = createUpstreamClient();
  });
  beforeEach(() => {
    for (const s of sims) s.reset();
    admitted.length = 0;
    finished.length = 0;
  });
  afterAll(async () => {
    await upstream?.close();
    await Promise.all((sims ?? []).map((s) => s.close()));
  });

  const provider = (i: number, upstreamModel = "sim-whisper"): ProviderRoute => ({
    id: `p${i}`,
    baseUrl: sims[i]?.url ?? "",
    upstreamModel,
    timeoutSeconds: 30,
    weight: 1,
    maxConcurrency: 0,
  });
  const model = (name: string, type: string, providers: ProviderRoute[]): ChatModel => ({
    name,
    type,
    costPromptPerMillion: 0,
    costCompletionPerMillion: 0,
    providers,
  });

  function client(maxFileBytes = 1024 * 1024) {
    const models: Record<string, ChatModel> = {
      whisper: model("whisper", "automatic-speech-recognition", [provider(0), provider(1)]),
      plain: model("plain", "automatic-speech-recognition", [provider(0, "sim-asr-plain")]),
      chat: model("chat", "text-generation", [provider(0, "sim-chat")]),
    };
    const governor: Governor = {
      refusedBeforeAdmission: () => {},
      mayForwardEarly: () => false,
      needsPromptTokens: () => true,
      admit: async (input) => {
        admitted.push(input);
        return {
          usageId: "u",
          headers: {},
          finish: (o) => {
            finished.push(o);
            return { cost: 0.5, carbon: { kWh: { min: 1, max: 2 }, kgCO2eq: { min: 3, max: 4 } } };
          },
        };
      },
    };
    const service = createAudioService({
      models: {
        resolve: async (name) => {
          const m = models[name];
          if (!m) throw modelNotFound(name);
          return { model: m, limits: null };
        },
      },
      upstream,
      router: createProviderRouter({
        queueTimeoutMs: 1000,
        ejectAfterFailures: 100,
        cooldownMs: 60_000,
        probe: async () => true,
      }),
      governor,
      maxAttempts: 3,
      connectTimeoutMs: 1000,
      idleTimeoutMs: 5000,
      maxFileBytes,
      defaultMaxTokens: 777,
    });
    return clientAs(AudioService, service, principal);
  }

  async function refusal(p: Promise<unknown>) {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConnectError);
    const ce = err as ConnectError;
    return { code: ce.code, message: ce.rawMessage, reason: ce.findDetails(ErrorInfoSchema)[0]?.reason };
  }

  const lastForm = () =>
    sims.map((s) => s.stats.lastRequest["/v1/audio/transcriptions"]).find(Boolean) as Record<string, unknown>;

  it("forwards the file as a form asking json, and bills the transcript's tokens and the audio's seconds once", async () => {
    const wav = wavFile(4);
    const res = await client().createTranscription({
      model: "whisper",
      file: wav,
      fileName: "note.wav",
      prompt: "Réunion du conseil",
      language: "fr",
      temperature: 0.25,
      responseFormat: TranscriptionFormat.TEXT,
      extra: { seed: 7 },
    });
    const expected = transcriptOf(wav, 4, 0.25).text;
    expect(res).toMatchObject({ model: "whisper", text: expected, language: "fr", duration: 4, subtitles: "" });
    expect(res.segments).toEqual([]);
    expect(lastForm()).toEqual({
      seed: "7",
      file: { name: "note.wav", type: "application/octet-stream", size: wav.length },
      model: "sim-whisper",
      response_format: "json",
      language: "fr",
      prompt: "Réunion du conseil",
      temperature: "0.25",
    });
    const prompt = countTokens("Réunion du conseil");
    expect(admitted).toHaveLength(1);
    expect(admitted[0]).toMatchObject({
      endpoint: "audio.transcriptions",
      promptTokens: prompt,
      maxCompletionTokens: 777,
    });
    // vLLM gives no token count in json: the gateway counts the text.
    const completion = countTokens(expected);
    expect(finished).toEqual([
      {
        status: 200,
        promptTokens: prompt,
        completionTokens: completion,
        audioSeconds: 4,
        servedBy: expect.objectContaining({ id: expect.stringMatching(/^p[01]$/) }),
      },
    ]);
    expect(res.usage).toMatchObject({
      promptTokens: prompt,
      completionTokens: completion,
      totalTokens: prompt + completion,
      audioSeconds: 4,
      cost: 0.5,
    });
  });

  it("asks verbose_json for verbose, SRT and VTT answers, and counts the segments' tokens", async () => {
    const wav = wavFile(9);
    const t = transcriptOf(wav, 9);
    const verbose = await client().createTranscription({
      model: "whisper",
      file: wav,
      responseFormat: TranscriptionFormat.VERBOSE_JSON,
      timestampGranularities: [TimestampGranularity.WORD],
    });
    expect(lastForm()).toMatchObject({ response_format: "verbose_json", timestamp_granularities: ["word"] });
    expect(verbose.language).toBe("en");
    expect(verbose.segments.map((s) => [s.id, s.start, s.end, s.text, s.tokens])).toEqual(
      t.segments.map((s) => [s.id, s.start, s.end, s.text, s.tokens]),
    );
    expect(verbose.words).toHaveLength(23);
    expect(finished[0]?.completionTokens).toBe(23);

    const srt = await client().createTranscription({
      model: "whisper",
      file: wav,
      responseFormat: TranscriptionFormat.SRT,
    });
    expect(srt.subtitles.split("\n\n")[0]).toBe(`1\n00:00:00,000 --> 00:00:03,910\n${t.segments[0]?.text.trim()}`);
    expect(srt.words).toEqual([]);
    const vtt = await client().createTranscription({
      model: "whisper",
      file: wav,
      responseFormat: TranscriptionFormat.VTT,
    });
    expect(vtt.subtitles).toMatch(/^WEBVTT\n\n00:00:00\.000 --> 00:00:03\.910\n/);
    expect(vtt.subtitles.match(/-->/g)).toHaveLength(3);
  });

  it("falls back to json and one whole-audio segment when the model refuses verbose_json", async () => {
    const wav = wavFile(2);
    const res = await client().createTranscription({
      model: "plain",
      file: wav,
      responseFormat: TranscriptionFormat.SRT,
    });
    const text = transcriptOf(wav, 2).text;
    expect(sims[0]?.stats.requests["/v1/audio/transcriptions"]).toBe(2);
    expect(lastForm()).toMatchObject({ response_format: "json" });
    expect(res.segments.map((s) => [s.start, s.end, s.text])).toEqual([[0, 2, text]]);
    expect(res.subtitles).toBe(`1\n00:00:00,000 --> 00:00:02,000\n${text}\n\n`);
    expect(finished).toHaveLength(1);
  });

  it("tries the other provider on a 503 and records the failure once when every provider failed", async () => {
    sims[0]?.setOptions({ failureRate: 1, failureStatus: 503 });
    const ok = await client().createTranscription({ model: "whisper", file: wavFile(1) });
    expect(ok.text.length).toBeGreaterThan(0);
    expect(finished.map((o) => [o.status, o.servedBy?.id])).toEqual([[200, "p1"]]);

    sims[1]?.setOptions({ failureRate: 1, failureStatus: 503 });
    finished.length = 0;
    const err = await refusal(client().createTranscription({ model: "whisper", file: wavFile(1) }));
    expect(err.code).toBe(Code.Unavailable);
    expect(finished).toHaveLength(1);
    expect(finished[0]).toMatchObject({ status: 503, promptTokens: 0, completionTokens: 0 });
    expect(finished[0]?.audioSeconds).toBeUndefined();
  });

  it("refuses bad requests before reserving anything or calling the upstream", async () => {
    const c = client(64 * 1024);
    const cases: [Promise<unknown>, Code, string][] = [
      [c.createTranscription({ model: "whisper", file: new Uint8Array(0) }), Code.InvalidArgument, "EMPTY_FILE"],
      [c.createTranscription({ model: "whisper", file: wavFile(3) }), Code.InvalidArgument, "FILE_TOO_LARGE"],
      [
        c.createTranscription({ model: "whisper", file: Buffer.from("%PDF-1.7 not audio") }),
        Code.InvalidArgument,
        "INVALID_AUDIO",
      ],
      [c.createTranscription({ model: "chat", file: wavFile(1) }), Code.InvalidArgument, "WRONG_MODEL_TYPE"],
      [c.createTranscription({ model: "nope", file: wavFile(1) }), Code.NotFound, "MODEL_NOT_FOUND"],
      [c.createTranscription({ model: "", file: wavFile(1) }), Code.InvalidArgument, "INVALID_ARGUMENT"],
      [
        c.createTranscription({ model: "whisper", file: wavFile(1), temperature: 2 }),
        Code.InvalidArgument,
        "INVALID_ARGUMENT",
      ],
      [
        c.createTranscription({
          model: "whisper",
          file: wavFile(1),
          timestampGranularities: [TimestampGranularity.WORD],
        }),
        Code.InvalidArgument,
        "WORD_TIMESTAMPS_NEED_VERBOSE_JSON",
      ],
    ];
    for (const [call, code, reason] of cases) expect(await refusal(call)).toMatchObject({ code, reason });
    expect(admitted).toHaveLength(0);
    expect(sims.every((s) => !s.stats.requests["/v1/audio/transcriptions"])).toBe(true);
  });
});
