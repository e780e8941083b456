import pino, { type Logger } from "pino";

/** Header and field paths never written to logs. */
export const REDACT_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  'req.headers["x-api-key"]',
  "headers.authorization",
  "authorization",
  "password",
  "secret",
];

/** Bytes of log lines held before a write (sonic-boom's minLength). */
const FLUSH_BYTES = 4096;
/** The longest a line waits for the buffer to fill before it is written anyway. */
const FLUSH_MS = 200;

/**
 * The platform's logger: JSON lines to stdout (or `opts.fd`), written asynchronously and in batches.
 *
 * Pino's default destination issues one asynchronous write per line when none is in flight. At one request at a
 * time that is one write per request, and each write is a hand-off to libuv's thread pool. Measured in the bench's
 * profile at concurrency 1, that hand-off cost the event loop about 47 µs per request, on the request's path: the
 * RPC's log line is written before the answer goes back. Here lines are held until 4 KiB have gathered (about a dozen
 * request lines) or 200 ms have passed since the first held line, whichever comes first. Then one write carries them
 * all.
 * - Nothing is ever written synchronously, so a slow reader of stdout (a pipe to a log collector) never stalls the
 *   event loop.
 * - At exit, pino's exit handler writes what is held.
 * - A process killed with SIGKILL loses at most the last 200 ms of lines. Usage records do not go through the logger
 *   and are not at risk.
 */
export function createLogger(level: string, opts: { fd?: number; flushMs?: number } = {}): Logger {
  const { fd = 1, flushMs = FLUSH_MS } = opts;
  const dest = pino.destination({ dest: fd, sync: false, minLength: FLUSH_BYTES });
  let armed = false;
  const flush = () => {
    armed = false;
    try {
      dest.flush();
    } catch {
      // Destroyed (the process is exiting): pino's exit handler wrote what was held.
    }
  };
  return pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      hooks: {
        // Called with every line before it is handed to the destination: arms the timer that bounds its wait.
        streamWrite(line) {
          if (!armed) {
            armed = true;
            setTimeout(flush, flushMs).unref();
          }
          return line;
        },
      },
    },
    dest,
  );
}
