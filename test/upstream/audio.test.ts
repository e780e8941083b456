import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { flacFile, wavFile } from "../support/audio.js";
import { transcriptOf } from "./audio.js";
import { type Simulator, startSimulator } from "./simulator.js";
import { DEFAULT_MODELS } from "./types.js";

const MODELS = [
  ...DEFAULT_MODELS,
  { id: "sim-whisper", maxModelLen: 448, kind: "transcription" as const },
  { id: "sim-asr-plain", maxModelLen: 448, kind: "transcription" as const, segmentTimestamps: false },
];

describe("simulator /v1/audio/transcriptions", () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ models: MODELS });
  });
  beforeEach(() => sim.reset());
  afterAll(async () => {
    await sim?.close();
  });

  const post = (file: Uint8Array | null, fields: Record<string, string | string[]> = {}, name = "a.wav") => {
    const form = new FormData();
    if (file) form.append("file", new Blob([file]), name);
    for (const [k, v] of Object.entries({ model: "sim-whisper", ...fields })) {
      for (const item of Array.isArray(v) ? v : [v]) form.append(k, item);
    }
    return fetch(`${sim.url}/v1/audio/transcriptions`, { method: "POST", body: form });
  };

  it("answers json with a transcript derived from the audio bytes and vLLM's duration usage", async () => {
    const wav = wavFile(3.2);
    const res = await post(wav);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { text: string; usage: unknown };
    expect(body.text).toBe(transcriptOf(wav, 3.2).text);
    // About 2.5 words per second: 8 words.
    expect(body.text.replace(/\./g, "").split(" ")).toHaveLength(8);
    expect(body.usage).toEqual({ type: "duration", seconds: 4 });
    // Another file says other words; the same file, the same ones.
    const other = (await (await post(wavFile(3.2, { pitch: 880 }))).json()) as { text: string };
    expect(other.text).not.toBe(body.text);
    expect(((await (await post(wav)).json()) as { text: string }).text).toBe(body.text);
    expect(sim.stats.lastRequest["/v1/audio/transcriptions"]).toMatchObject({
      model: "sim-whisper",
      file: { name: "a.wav", size: wav.length },
    });
  });

  it("answers text as text/plain and verbose_json with vLLM's string duration, segments and asked-for words", async () => {
    const wav = wavFile(9);
    const text = await post(wav, { response_format: "text" });
    expect(text.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(await text.text()).toBe(transcriptOf(wav, 9).text);

    const res = await post(wav, {
      response_format: "verbose_json",
      language: "fr",
      temperature: "0.2",
      "timestamp_granularities[]": ["segment", "word"],
    });
    const body = (await res.json()) as Record<string, unknown> & { segments: { start: number; end: number }[] };
    const expected = transcriptOf(wav, 9, 0.2);
    expect(body).toEqual({
      duration: "9",
      language: "fr",
      text: expected.text,
      segments: expected.segments,
      words: expected.words,
    });
    // 23 words, ten per segment, timed end to end over the 9 s.
    expect(body.segments.map((s) => [s.start, s.end])).toEqual([
      [0, 3.91],
      [3.91, 7.83],
      [7.83, 9],
    ]);
    const noWords = (await (await post(wav, { response_format: "verbose_json" })).json()) as object;
    expect(noWords).not.toHaveProperty("words");
  });

  it("reads FLAC, and refuses what vLLM refuses: srt/vtt, verbose_json without segment timestamps, bad files", async () => {
    const flac = (await (await post(flacFile(2), {}, "a.flac")).json()) as { usage: unknown };
    expect(flac.usage).toEqual({ type: "duration", seconds: 2 });

    for (const format of ["srt", "vtt"]) {
      const res = await post(wavFile(1), { response_format: format });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/only support/);
    }
    const plain = await post(wavFile(1), { model: "sim-asr-plain", response_format: "verbose_json" });
    expect(plain.status).toBe(400);
    expect(((await plain.json()) as { error: { message: string } }).error.message).toBe(
      "Currently do not support verbose_json for sim-asr-plain",
    );
    expect((await post(Buffer.from("not audio at all"))).status).toBe(400);
    expect((await post(null)).status).toBe(400);
    const wrong = await post(wavFile(1), { model: "sim-chat" });
    expect(wrong.status).toBe(400);
    expect((await post(wavFile(1), { model: "nope" })).status).toBe(404);
    const json = await fetch(`${sim.url}/v1/audio/transcriptions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "sim-whisper" }),
    });
    expect(json.status).toBe(400);
  });

  it("honours the injected failures and leaves usage out when asked to", async () => {
    sim.setOptions({ failureRate: 1, failureStatus: 503 });
    expect((await post(wavFile(1))).status).toBe(503);
    expect(sim.stats.failed).toBe(1);
    sim.setOptions({ failureRate: 0, omitUsage: true });
    expect(await (await post(wavFile(1))).json()).not.toHaveProperty("usage");
  });
});
