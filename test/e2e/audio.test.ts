import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import OpenAI, { toFile } from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { TranscriptionFormat } from "../../gen/passerelle/audio/v1/audio_pb.js";
import { AudioService } from "../../gen/passerelle/audio/v1/audio_service_pb.js";
import { countTokens } from "../../services/platform/tokenizer.js";
import { flacFile, wavFile } from "../support/audio.js";
import { expectOpenAIError, validateOpenAI } from "../support/openai-schema.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { transcriptOf } from "../upstream/audio.js";
import { type Simulator, startSimulator } from "../upstream/simulator.js";
import { DEFAULT_MODELS } from "../upstream/types.js";

const MAX_FILE_BYTES = 512 * 1024;

type Json = Record<string, unknown> & { usage: Record<string, unknown> };

/**
 * Audio transcription end to end: the official openai SDK and raw multipart HTTP → REST bridge → AudioService → the
 * vLLM simulator, plus the RPC over connect-node, and the usage records the requests leave.
 */
describe("audio transcriptions", () => {
  let sim: Simulator;
  let t: TestPlatform;
  let openai: OpenAI;
  let dir: string;

  beforeAll(async () => {
    sim = await startSimulator({
      models: [...DEFAULT_MODELS, { id: "sim-whisper", maxModelLen: 448, kind: "transcription" }],
    });
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-audio-"));
    const file = path.join(dir, "models.yaml");
    await fs.writeFile(
      file,
      [
        "models:",
        "  - name: whisper-large-v3",
        "    aliases: [whisper-1]",
        "    type: automatic-speech-recognition",
        "    providers:",
        `      - { type: vllm, url: "${sim.url}", model_name: sim-whisper }`,
        "  - name: qwen-chat",
        "    type: text-generation",
        "    providers:",
        `      - { type: vllm, url: "${sim.url}", model_name: sim-chat }`,
        "",
      ].join("\n"),
    );
    t = await startTestPlatform({
      env: { PASSERELLE_MODELS_FILE: file, PASSERELLE_RAG_MAX_FILE_BYTES: String(MAX_FILE_BYTES) },
    });
    openai = new OpenAI({ baseURL: `${t.httpUrl}/v1`, apiKey: t.adminKey, maxRetries: 0 });
  });
  beforeEach(() => sim.reset());
  afterAll(async () => {
    await t?.close();
    await sim?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  /** A raw multipart request, as curl -F sends it. */
  const post = (file: Uint8Array | null, fields: Record<string, string> = {}, name = "a.wav") => {
    const form = new FormData();
    if (file) form.append("file", new Blob([file]), name);
    for (const [k, v] of Object.entries({ model: "whisper-1", ...fields })) form.append(k, v);
    return fetch(`${t.httpUrl}/v1/audio/transcriptions`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.adminKey}` },
      body: form,
    });
  };
  const lastForm = () => sim.stats.lastRequest["/v1/audio/transcriptions"] as Record<string, unknown>;

  it("transcribes a WAV with the SDK's default (json): OpenAI's JSON with token usage and the audio's seconds", async () => {
    const wav = wavFile(4);
    const res = await openai.audio.transcriptions.create({ file: await toFile(wav, "a.wav"), model: "whisper-1" });
    validateOpenAI("CreateTranscriptionResponseJson", res);
    const text = transcriptOf(wav, 4).text;
    expect(res.text).toBe(text);
    expect(res.usage).toEqual({
      type: "tokens",
      input_tokens: 0,
      output_tokens: countTokens(text),
      total_tokens: countTokens(text),
      seconds: 4,
      cost: 0,
      carbon: { kWh: { min: 0, max: 0 }, kgCO2eq: { min: 0, max: 0 } },
    });
    expect(lastForm()).toMatchObject({
      model: "sim-whisper",
      response_format: "json",
      file: { name: "a.wav", size: wav.length },
    });
  });

  it("answers text, verbose_json (segments, words) and SRT/VTT built from the segments", async () => {
    const wav = wavFile(9);
    const t9 = transcriptOf(wav, 9, 0.2);
    const file = () => toFile(wav, "talk.wav");
    const text = await openai.audio.transcriptions.create({
      file: await file(),
      model: "whisper-1",
      response_format: "text",
      temperature: 0.2,
    });
    expect(text).toBe(t9.text);

    const verbose = await openai.audio.transcriptions.create({
      file: await file(),
      model: "whisper-large-v3",
      response_format: "verbose_json",
      language: "fr",
      temperature: 0.2,
      timestamp_granularities: ["segment", "word"],
    });
    validateOpenAI("CreateTranscriptionResponseVerboseJson", verbose);
    expect(lastForm()).toMatchObject({ response_format: "verbose_json", timestamp_granularities: ["segment", "word"] });
    expect(verbose).toMatchObject({ task: "transcribe", language: "fr", duration: 9, text: t9.text });
    expect(verbose.segments?.map((s) => [s.id, s.start, s.end, s.text, s.tokens])).toEqual(
      t9.segments.map((s) => [s.id, s.start, s.end, s.text, s.tokens]),
    );
    expect(verbose.words).toEqual(t9.words);
    // Billed by the segments' token ids (vLLM gives no token count): 23 words, one token each here.
    expect(verbose.usage).toMatchObject({ type: "duration", seconds: 9, output_tokens: 23 });

    const srt = await openai.audio.transcriptions.create({
      file: await file(),
      model: "whisper-1",
      response_format: "srt",
      temperature: 0.2,
    });
    const cues = t9.segments.map((s) => s.text.trim());
    expect(srt).toBe(
      `1\n00:00:00,000 --> 00:00:03,910\n${cues[0]}\n\n2\n00:00:03,910 --> 00:00:07,830\n${cues[1]}\n\n` +
        `3\n00:00:07,830 --> 00:00:09,000\n${cues[2]}\n\n`,
    );
    const vtt = await openai.audio.transcriptions.create({
      file: await file(),
      model: "whisper-1",
      response_format: "vtt",
      temperature: 0.2,
    });
    expect(vtt).toBe(
      `WEBVTT\n\n00:00:00.000 --> 00:00:03.910\n${cues[0]}\n\n00:00:03.910 --> 00:00:07.830\n${cues[1]}\n\n` +
        `00:00:07.830 --> 00:00:09.000\n${cues[2]}\n\n`,
    );
    // The upstream was asked only for what vLLM answers.
    expect(lastForm()).toMatchObject({ response_format: "verbose_json" });

    const types: Record<string, RegExp> = {
      text: /^text\/plain/,
      srt: /^application\/x-subrip/,
      vtt: /^text\/vtt/,
      json: /^application\/json/,
      verbose_json: /^application\/json/,
    };
    for (const [format, type] of Object.entries(types)) {
      const res = await post(wav, { response_format: format });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type"), format).toMatch(type);
      expect(res.headers.get("x-request-id")).toBeTruthy();
      if (format === "json") validateOpenAI("CreateTranscriptionResponseJson", await res.json());
      if (format === "verbose_json") validateOpenAI("CreateTranscriptionResponseVerboseJson", await res.json());
    }
  });

  it("reads a FLAC's duration from its content, whatever its name", async () => {
    const res = await openai.audio.transcriptions.create({
      file: await toFile(flacFile(6.5), "recording.bin"),
      model: "whisper-1",
      response_format: "verbose_json",
    });
    validateOpenAI("CreateTranscriptionResponseVerboseJson", res);
    expect(res.duration).toBe(6.5);
    expect(res.usage).toMatchObject({ type: "duration", seconds: 6.5 });
  });

  it("refuses bad input in OpenAI's error shape, without calling the upstream", async () => {
    const notAudio = await expectOpenAIError(await post(Buffer.from("Bonjour, ceci n'est pas un son.")), 400);
    expect(notAudio.error).toMatchObject({ param: "file", code: "invalid_audio" });
    expect(notAudio.error.message).toMatch(/not audio/);
    const empty = await expectOpenAIError(await post(new Uint8Array(0)), 400);
    expect(empty.error).toMatchObject({ param: "file", code: "empty_file" });
    const missing = await expectOpenAIError(await post(null), 400);
    expect(missing.error.param).toBe("file");
    const large = await expectOpenAIError(await post(wavFile(20)), 413);
    expect(large.error).toMatchObject({ param: "file", code: "file_too_large" });
    const wrongType = await expectOpenAIError(await post(wavFile(1), { model: "qwen-chat" }), 400);
    expect(wrongType.error).toMatchObject({ param: "model", code: "wrong_model_type" });
    await expectOpenAIError(await post(wavFile(1), { model: "no-such-model" }), 404, "invalid_request_error");
    const format = await expectOpenAIError(await post(wavFile(1), { response_format: "mp3" }), 400);
    expect(format.error.param).toBe("response_format");
    const temperature = await expectOpenAIError(await post(wavFile(1), { temperature: "hot" }), 400);
    expect(temperature.error.param).toBe("temperature");
    expect(sim.stats.requests["/v1/audio/transcriptions"]).toBeUndefined();

    // The SDK surfaces them as APIErrors with the status.
    const err = await openai.audio.transcriptions
      .create({ file: await toFile(Buffer.from("x"), "a.wav"), model: "whisper-1" })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
  });

  it("serves the RPC over Connect, with the bytes, and FILE_TOO_LARGE as InvalidArgument", async () => {
    const client = createClient(AudioService, createConnectTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" }));
    const headers = { authorization: `Bearer ${t.adminKey}` };
    const wav = wavFile(2);
    const res = await client.createTranscription(
      { model: "whisper-1", file: wav, fileName: "rpc.wav", responseFormat: TranscriptionFormat.VTT },
      { headers },
    );
    expect(res.text).toBe(transcriptOf(wav, 2).text);
    expect(res.subtitles).toBe(`WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n${res.text}\n\n`);
    expect(res.usage).toMatchObject({ audioSeconds: 2, completionTokens: 5 });
    const err = await client
      .createTranscription({ model: "whisper-1", file: wavFile(20) }, { headers })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    expect((err as ConnectError).rawMessage).toContain(`${MAX_FILE_BYTES} bytes`);
  });

  it("leaves one usage record per request (endpoint audio.transcriptions) with the audio's seconds", async () => {
    const wav = wavFile(3.5, { pitch: 300 });
    const body = (await (await post(wav, { user: "usage-check" })).json()) as Json;
    sim.setOptions({ failureRate: 1, failureStatus: 500 });
    await expectOpenAIError(await post(wavFile(1)), 503);
    let records: Json[] = [];
    for (let i = 0; i < 100; i++) {
      const res = await fetch(`${t.httpUrl}/v1/me/usage?endpoint=audio.transcriptions&limit=100`, {
        headers: { authorization: `Bearer ${t.adminKey}` },
      });
      records = ((await res.json()) as { data: Json[] }).data;
      if (records.some((r) => r.audio_seconds === 3.5) && records.some((r) => r.status === 503)) break;
      await sleep(50);
    }
    const mine = records.find((r) => r.audio_seconds === 3.5);
    expect(mine).toMatchObject({
      endpoint: "audio.transcriptions",
      model: "whisper-large-v3",
      status: 200,
      prompt_tokens: 0,
      completion_tokens: body.usage.output_tokens,
      total_tokens: body.usage.total_tokens,
    });
    const failed = records.find((r) => r.status === 503);
    expect(failed).toMatchObject({ endpoint: "audio.transcriptions", completion_tokens: 0, audio_seconds: null });
    expect(records.every((r) => r.endpoint === "audio.transcriptions")).toBe(true);
  });
});
