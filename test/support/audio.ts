/**
 * Small audio files for tests, written by hand so that no fixture is needed: a PCM WAV (a 44-byte RIFF header and a
 * tone) and a FLAC holding only its STREAMINFO block (enough for a reader to know its format and duration).
 */

/** A mono 16-bit PCM WAV of `seconds` at `rate` Hz; `pitch` changes the samples (and so the simulated words). */
export function wavFile(seconds: number, opts: { rate?: number; pitch?: number } = {}): Buffer {
  const rate = opts.rate ?? 16_000;
  const n = Math.round(seconds * rate);
  const data = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) data.writeInt16LE(Math.round(Math.sin((i * (opts.pitch ?? 440)) / rate) * 8000), i * 2);
  const h = Buffer.alloc(44);
  h.write("RIFF", 0, "latin1");
  h.writeUInt32LE(36 + data.length, 4);
  h.write("WAVEfmt ", 8, "latin1");
  h.writeUInt32LE(16, 16); // fmt chunk size
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(1, 22); // mono
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 2, 28); // bytes per second
  h.writeUInt16LE(2, 32); // block align
  h.writeUInt16LE(16, 34); // bits per sample
  h.write("data", 36, "latin1");
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}

/** A FLAC stream of `seconds` at `rate` Hz (16-bit mono), its STREAMINFO block only. */
export function flacFile(seconds: number, rate = 16_000): Buffer {
  const b = Buffer.alloc(4 + 4 + 34);
  b.write("fLaC", 0, "latin1");
  b[4] = 0x80; // last metadata block, type 0 (STREAMINFO)
  b.writeUIntBE(34, 5, 3);
  b.writeUInt16BE(4096, 8); // min block size
  b.writeUInt16BE(4096, 10); // max block size
  // sample rate (20 bits) | channels - 1 (3 bits) | bits per sample - 1 (5 bits) | total samples (36 bits)
  const packed = (BigInt(rate) << 44n) | (0n << 41n) | (15n << 36n) | BigInt(Math.round(seconds * rate));
  b.writeBigUInt64BE(packed, 18);
  return b;
}
