import type { ServerResponse } from "node:http";
import type { HttpError } from "./errors.js";

/**
 * Writes Server-Sent Events exactly as OpenAI frames them: `data: <json>\n\n` per event, `data: [DONE]\n\n` at the
 * end. Each event is written (and so flushed: TCP_NODELAY is on) as soon as it is produced; when the socket's buffer
 * is full, the writer waits for `drain` rather than buffering without bound.
 */
export function createSseWriter(res: ServerResponse, headers: Record<string, string>) {
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    connection: "keep-alive",
    "x-accel-buffering": "no",
    ...headers,
  });
  res.socket?.setNoDelay(true);

  async function write(text: string): Promise<void> {
    if (res.destroyed || res.writableEnded) return;
    if (!res.write(text)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off("drain", done);
          res.off("close", done);
          resolve();
        };
        res.on("drain", done);
        res.on("close", done);
      });
    }
  }

  return {
    event: (json: unknown) => write(`data: ${JSON.stringify(json)}\n\n`),
    /** After the first byte, errors travel inside the stream, in OpenAI's shape. */
    error: (e: HttpError) => write(`data: ${JSON.stringify(e.body)}\n\n`),
    async done() {
      await write("data: [DONE]\n\n");
      res.end();
    },
    end: () => res.end(),
  };
}
