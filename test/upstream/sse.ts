/**
 * A small, strict SSE reader for tests: yields every frame as it arrives, comments (`: ping`) included, so that
 * tests can assert framing, order and timing rather than only the reassembled payload.
 */

export type SseFrame = { kind: "data"; data: string; at: number } | { kind: "comment"; text: string; at: number };

export class SseReader {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private buffer = "";
  private readonly ready: SseFrame[] = [];
  private ended = false;

  constructor(res: Response) {
    if (!res.body) throw new Error("SseReader: the response has no body");
    this.reader = res.body.getReader();
  }

  /** The next frame, or null once the stream has ended. */
  async next(): Promise<SseFrame | null> {
    while (this.ready.length === 0) {
      if (this.ended) return null;
      const { value, done } = await this.reader.read();
      if (done) {
        this.ended = true;
        if (this.buffer.trim() !== "") throw new Error(`SseReader: stream ended inside a frame: ${this.buffer}`);
        continue;
      }
      this.buffer += this.decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
      let cut = this.buffer.indexOf("\n\n");
      while (cut >= 0) {
        this.parseBlock(this.buffer.slice(0, cut));
        this.buffer = this.buffer.slice(cut + 2);
        cut = this.buffer.indexOf("\n\n");
      }
    }
    return this.ready.shift() ?? null;
  }

  /** The next `data:` frame (comments skipped), or null at the end. */
  async nextData(): Promise<string | null> {
    for (;;) {
      const f = await this.next();
      if (f === null) return null;
      if (f.kind === "data") return f.data;
    }
  }

  /** Every remaining frame. */
  async all(): Promise<SseFrame[]> {
    const out: SseFrame[] = [];
    for (let f = await this.next(); f !== null; f = await this.next()) out.push(f);
    return out;
  }

  async cancel(): Promise<void> {
    await this.reader.cancel().catch(() => undefined);
  }

  private parseBlock(block: string): void {
    const at = performance.now();
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) this.ready.push({ kind: "comment", text: line.slice(1).trim(), at });
      else if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
      else if (line !== "") throw new Error(`SseReader: unexpected line in an SSE frame: ${JSON.stringify(line)}`);
    }
    if (data.length > 0) this.ready.push({ kind: "data", data: data.join("\n"), at });
  }
}
