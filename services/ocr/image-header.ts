import type { ImageMime } from "./detect.js";

/**
 * The pixel size of a PNG, JPEG or WebP image, read from its header without decoding it. Decoding client images in
 * the gateway is avoided on purpose: @napi-rs/canvas 0.1.100 crashes the whole process (SIGSEGV, also from a worker
 * thread) on a truncated PNG. The upstream model decodes the image; one it cannot read fails there (a 4xx passed on).
 * Returns null when the header is not readable.
 */
export function imageHeaderSize(bytes: Uint8Array, mime: ImageMime): { width: number; height: number } | null {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = mime === "image/png" ? png(b) : mime === "image/jpeg" ? jpeg(b) : webp(b);
  return size && size.width > 0 && size.height > 0 ? size : null;
}

/** PNG: the IHDR chunk comes first, width and height at bytes 16 and 20. */
function png(b: Buffer) {
  if (b.length < 24 || b.toString("latin1", 12, 16) !== "IHDR") return null;
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

/** JPEG: walks the marker segments up to a start-of-frame (SOF0–SOF15 but DHT, JPG and DAC), which holds the size. */
function jpeg(b: Buffer) {
  let i = 2;
  while (i + 9 < b.length) {
    if (b[i] !== 0xff) return null;
    const marker = b[i + 1] as number;
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2; // markers without a length
      continue;
    }
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) return { height: b.readUInt16BE(i + 5), width: b.readUInt16BE(i + 7) };
    if (marker === 0xda || marker === 0xd9) return null; // scan data or end before any frame header
    i += 2 + b.readUInt16BE(i + 2);
  }
  return null;
}

/** WebP: RIFF container, then a lossy (VP8), lossless (VP8L) or extended (VP8X) first chunk. */
function webp(b: Buffer) {
  if (b.length < 30 || b.toString("latin1", 0, 4) !== "RIFF" || b.toString("latin1", 8, 12) !== "WEBP") return null;
  const chunk = b.toString("latin1", 12, 16);
  if (chunk === "VP8 ") {
    // Frame tag (3 bytes), start code 9d 01 2a, then 14-bit width and height.
    if (b[23] !== 0x9d || b[24] !== 0x01 || b[25] !== 0x2a) return null;
    return { width: b.readUInt16LE(26) & 0x3fff, height: b.readUInt16LE(28) & 0x3fff };
  }
  if (chunk === "VP8L") {
    if (b[20] !== 0x2f) return null;
    const bits = b.readUInt32LE(21);
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (chunk === "VP8X") return { width: b.readUIntLE(24, 3) + 1, height: b.readUIntLE(27, 3) + 1 };
  return null;
}
