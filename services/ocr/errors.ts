import { Code, type ConnectError } from "@connectrpc/connect";
import { rpcError } from "../platform/errors.js";

/** Why a document cannot be transcribed: all the client's doing, all InvalidArgument (400) but FILE_TOO_LARGE (413). */
export type OcrFailureReason =
  | "CORRUPT_DOCUMENT"
  | "UNSUPPORTED_FILE_TYPE"
  | "EMPTY_DOCUMENT"
  | "FILE_TOO_LARGE"
  | "INVALID_DOCUMENT_URL"
  | "DOCUMENT_URL_NOT_ALLOWED"
  | "DOCUMENT_URL_UNREACHABLE"
  | "PAGE_OUT_OF_RANGE"
  | "TOO_MANY_PAGES"
  | "RENDER_TIMEOUT";

/** The RPC error of a refused document; `param` names the request field at fault. */
export function ocrError(reason: OcrFailureReason, message: string, param = "document"): ConnectError {
  // FILE_TOO_LARGE is the documents domain's reason: the bridge answers it 413 whatever the code.
  return rpcError(Code.InvalidArgument, message, reason, { param });
}
