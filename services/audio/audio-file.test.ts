import { ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/passerelle/errors/v1/error_info_pb.js";
import { flacFile, wavFile } from "../../test/support/audio.js";
import { readAudio } from "./audio-file.js";

async function refusal(file: Uint8Array): Promise<{ message: string; reason?: string; param?: string }> {
  const err = await readAudio(file).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectError);
  const ce = err as ConnectError;
  const info = ce.findDetails(ErrorInfoSchema)[0];
  return { message: ce.rawMessage, reason: info?.reason, param: info?.param };
}

describe("readAudio", () => {
  it("reads the format and duration of WAV and FLAC files from their content", async () => {
    expect(await readAudio(wavFile(2.5))).toEqual({ container: "WAVE", duration: 2.5 });
    expect(await readAudio(flacFile(3.25))).toEqual({ container: "FLAC", duration: 3.25 });
  });

  it("refuses an empty file, text, an image and a WAV without samples, naming the file", async () => {
    expect(await refusal(new Uint8Array(0))).toMatchObject({ reason: "EMPTY_FILE", param: "file" });
    const text = await refusal(Buffer.from("hello, this is not audio"));
    expect(text).toMatchObject({ reason: "INVALID_AUDIO", param: "file" });
    expect(text.message).toMatch(/^The file is not audio in a supported format \(.+\)\. Send FLAC, MP3/);
    const png = Buffer.from("89504e470d0a1a0a0000000d4948445200000001000000010806000000", "hex");
    expect(await refusal(png)).toMatchObject({ reason: "INVALID_AUDIO" });
    expect((await refusal(wavFile(0))).message).toBe("The WAVE file holds no audio of a readable length.");
  });
});
