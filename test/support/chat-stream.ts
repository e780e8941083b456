import { ConnectError } from "@connectrpc/connect";
import type { StreamChatCompletionResponse } from "../../gen/passerelle/inference/v1/inference_service_pb.js";

/** Reads a StreamChatCompletion to its end: the first choice's text received, and the error that ended it, if any. */
export async function readChatStream(
  messages: AsyncIterable<StreamChatCompletionResponse>,
): Promise<{ text: string; error: ConnectError | undefined }> {
  let text = "";
  try {
    for await (const m of messages) text += m.chunk?.choices[0]?.delta?.content ?? "";
    return { text, error: undefined };
  } catch (err) {
    return { text, error: ConnectError.from(err) };
  }
}
