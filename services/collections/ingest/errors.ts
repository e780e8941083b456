/**
 * Why an upload or a chunking request was refused. These are machine reasons for the client: the collections
 * service turns each into a ConnectError with the same reason (and `param` when one option is to blame).
 */
export type IngestErrorReason =
  /** The content is a type we do not parse (image, archive, spreadsheet, unknown binary). */
  | "UNSUPPORTED_FILE_TYPE"
  /** The file, or the text extracted from it, is empty or whitespace only. */
  | "EMPTY_DOCUMENT"
  /** The file claims or looks like a PDF/DOCX but the library cannot read it (truncated, damaged, encrypted). */
  | "CORRUPT_DOCUMENT"
  /** A JSON upload that is not an array of `{ text, title?, metadata? }`. */
  | "INVALID_JSON_DOCUMENT"
  /** Chunking options out of range (bad size, overlap, regex…). */
  | "INVALID_CHUNKING"
  /** The splitter itself failed on valid options. */
  | "CHUNKING_FAILED"
  /** Parsing took longer than the pool allows (a pathological file); the worker was terminated. */
  | "PARSE_TIMEOUT";

/**
 * A refusal caused by the document or the options, as opposed to a bug: its message is short and safe to show the
 * client (never a library stack); the library's error, if any, stays as `cause` for the logs.
 */
export class IngestError extends Error {
  override readonly name = "IngestError";
  readonly param: string | undefined;

  constructor(
    readonly reason: IngestErrorReason,
    message: string,
    opts: { param?: string; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.param = opts.param;
  }
}
