import { createHash } from "node:crypto";
import type { ChoicePlan, GenerationParams } from "./generation.js";
import { isRecord } from "./http.js";
import { splitPieces } from "./text.js";

/**
 * Vision for the simulator: a chat request whose last user message carries `image_url` parts with `data:` URLs is
 * answered with Markdown derived from the images themselves: their type, pixel size (read from a PNG's header) and a
 * short hash of their bytes. A test can thus tell which image each answer came from (page i's Markdown from page i's
 * rendering) without a model. Requests without such images are not touched.
 */

export interface SeenImage {
  mime: string;
  bytes: Buffer;
}

/** The images of the last user message given as base64 `data:` URLs, in order. */
export function imagesOf(body: unknown): SeenImage[] {
  const messages = isRecord(body) && Array.isArray(body.messages) ? body.messages : [];
  const last = [...messages].reverse().find((m) => isRecord(m) && m.role === "user");
  if (!isRecord(last) || !Array.isArray(last.content)) return [];
  const out: SeenImage[] = [];
  for (const part of last.content) {
    if (!isRecord(part) || part.type !== "image_url" || !isRecord(part.image_url)) continue;
    const url = part.image_url.url;
    const m = typeof url === "string" ? /^data:([^;,]*)(?:;[^,]*)?;base64,(.*)$/s.exec(url) : null;
    if (m) out.push({ mime: m[1] || "application/octet-stream", bytes: Buffer.from(m[2] ?? "", "base64") });
  }
  return out;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A PNG's width and height (its IHDR chunk), or null for anything else. */
export function pngSize(bytes: Buffer): { width: number; height: number } | null {
  if (bytes.length < 24 || !bytes.subarray(0, 8).equals(PNG_SIGNATURE)) return null;
  if (bytes.toString("latin1", 12, 16) !== "IHDR") return null;
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

/** The first 12 hex digits of the bytes' SHA-256. */
export function shortHash(bytes: Buffer): string {
  return createHash("sha256").update(bytes).digest("hex").slice(0, 12);
}

/** What the simulated model "reads" in the images: one section per image. Tests rebuild it to compare. */
export function visionMarkdown(images: readonly SeenImage[]): string {
  return images
    .map((img, i) => {
      const size = pngSize(img.bytes);
      const dims = size ? `${size.width}x${size.height} px` : "size unknown";
      const title = images.length === 1 ? "# Page" : `# Page ${i + 1}`;
      return `${title}\n\nImage ${img.mime}, ${dims}, sha256 ${shortHash(img.bytes)}.`;
    })
    .join("\n\n");
}

/**
 * The choices of a vision request (null when it has no data-URL image): each choice is the images' Markdown, cut at
 * the request's token limit like any generation (finish_reason `length` then).
 */
export function visionPlans(body: unknown, p: GenerationParams): ChoicePlan[] | null {
  // A forced tool call is answered as usual: the reply's shape is the tool's, not a transcription.
  const images = p.tool ? [] : imagesOf(body);
  if (images.length === 0) return null;
  const all = splitPieces(visionMarkdown(images));
  const pieces = all.slice(0, Math.max(0, p.limit));
  return Array.from({ length: p.n }, (_, index) => ({
    index,
    pieces,
    completionTokens: pieces.length,
    finishReason: pieces.length < all.length ? "length" : "stop",
    stopReason: null,
    toolCall: null,
    logprobs: null,
  }));
}
