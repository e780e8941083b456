import type { parseBuffer as ParseBuffer } from "music-metadata";
import { invalidArgument } from "../platform/errors.js";

/** What the gateway reads of an audio file before forwarding it. */
export interface AudioInfo {
  /** Container as music-metadata names it (`WAVE`, `MPEG`, `FLAC`, `Ogg`, …). */
  container: string;
  /** Seconds of audio: the usage record's audio seconds. */
  duration: number;
}

let parseBuffer: typeof ParseBuffer | undefined;

/**
 * Reads the file's format and duration with music-metadata. The content decides, not the name or the declared type:
 * a text file called `a.wav` is not audio. Headers are enough for most formats; a stream without a length in its
 * headers (an MP3 without a Xing frame, raw AAC) is scanned whole, once. Anything unreadable, or audio of no length,
 * is the client's error (InvalidArgument), never the upstream's to discover.
 */
export async function readAudio(file: Uint8Array): Promise<AudioInfo> {
  if (file.length === 0) throw invalidArgument("The audio file is empty.", "file", "EMPTY_FILE");
  // Loaded on first use (≈ 12 MB): a deployment without speech models never carries it.
  parseBuffer ??= (await import("music-metadata")).parseBuffer;
  let container: string | undefined;
  let duration: number | undefined;
  try {
    let { format } = await parseBuffer(file, undefined, { skipCovers: true });
    if (format.duration === undefined && format.container) {
      ({ format } = await parseBuffer(file, undefined, { skipCovers: true, duration: true }));
    }
    container = format.container;
    duration = format.duration;
  } catch (err) {
    throw invalidArgument(
      `The file is not audio in a supported format (${(err as Error).message}). Send FLAC, MP3, MP4/M4A, OGG, WAV or WebM.`,
      "file",
      "INVALID_AUDIO",
    );
  }
  if (!container) {
    throw invalidArgument("The file's audio format cannot be determined.", "file", "INVALID_AUDIO");
  }
  if (duration === undefined || !Number.isFinite(duration) || duration <= 0) {
    throw invalidArgument(
      `The ${container} file holds no audio of a readable length.`,
      "file",
      duration === 0 ? "EMPTY_FILE" : "INVALID_AUDIO",
    );
  }
  return { container, duration };
}
