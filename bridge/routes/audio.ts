import multipart from "@fastify/multipart";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { TranscriptionFormat } from "../../gen/passerelle/audio/v1/audio_pb.js";
import { multipartError } from "../mappers/collections.js";
import { type AudioUpload, transcriptionReply, transcriptionRequestFromForm } from "../openai/audio.js";
import { InvalidRequest } from "../openai/invalid-request.js";
import { type Clients, callOptions } from "../rpc.js";
import { errorResponses } from "../schemas/common.js";

/**
 * Text fields of a transcription form: OpenAI's (model, language, prompt, response_format, temperature, user,
 * stream, two timestamp_granularities) and a few extras forwarded upstream. 16 KiB each holds the longest prompt a
 * speech model reads (Whisper: 224 tokens); what is buffered besides the file stays under 400 KiB.
 */
const FORM_LIMITS = { fields: 24, fieldSize: 16 * 1024 };

interface Form {
  fields: Map<string, string[]>;
  upload?: AudioUpload;
}

/**
 * `POST /v1/audio/transcriptions` (OpenAI-compatible, multipart/form-data), translated to
 * AudioService.CreateTranscription. The file is read whole (up to the platform's upload limit: 413 above, before the
 * rest of the body is read) and checked by the core, which reads its format and duration before forwarding it.
 */
export async function audioRoutes(app: FastifyInstance, clients: Clients, opts: { maxFileBytes: number }) {
  const forms = new WeakMap<FastifyRequest, Form>();

  // Multipart only here (as for documents): every other route keeps answering 415 to anything but JSON.
  await app.register(async (scope) => {
    await scope.register(multipart, {
      limits: { fileSize: opts.maxFileBytes, files: 1, parts: FORM_LIMITS.fields + 1, ...FORM_LIMITS },
    });

    scope.post(
      "/v1/audio/transcriptions",
      {
        config: { verifyKeyFirst: true },
        schema: {
          tags: ["inference"],
          summary:
            "Transcribes an audio file (OpenAI-compatible, multipart/form-data: file, model, language, prompt, " +
            "response_format json | text | verbose_json | srt | vtt, temperature, timestamp_granularities[]) with an " +
            `\`automatic-speech-recognition\` model. Files up to ${opts.maxFileBytes} bytes (larger: 413); not ` +
            "audio or empty: 400. Usage counts the transcript's tokens and the audio's seconds (endpoint " +
            "`audio.transcriptions`).",
          security: [{ bearer: [] }],
          consumes: ["multipart/form-data"],
          response: { ...errorResponses, 413: { $ref: "Error#" } },
        },
        preValidation: async (req) => {
          if (!req.isMultipart()) {
            throw new InvalidRequest("Send the audio as multipart/form-data (fields 'file' and 'model').", "file");
          }
          const form: Form = { fields: new Map() };
          try {
            for await (const part of req.parts()) {
              if (part.type === "file") {
                if (part.fieldname !== "file") {
                  throw new InvalidRequest(
                    `Send the audio as the 'file' field, not '${part.fieldname}'.`,
                    part.fieldname,
                  );
                }
                form.upload = { data: await part.toBuffer(), fileName: part.filename };
              } else {
                // Busboy cuts a field at `fieldSize` without an error: refuse it rather than forward a truncated value.
                if (part.valueTruncated) {
                  throw new InvalidRequest(
                    `'${part.fieldname}' is longer than ${FORM_LIMITS.fieldSize} bytes.`,
                    part.fieldname,
                  );
                }
                const list = form.fields.get(part.fieldname) ?? [];
                list.push(String(part.value));
                form.fields.set(part.fieldname, list);
              }
            }
          } catch (err) {
            throw multipartError(err, opts.maxFileBytes);
          }
          forms.set(req, form);
        },
      },
      async (req, reply) => {
        const form: Form = forms.get(req) ?? { fields: new Map() };
        const request = transcriptionRequestFromForm(form.fields, form.upload);
        const res = await clients.audio.createTranscription(request, callOptions(req, reply));
        const answer = transcriptionReply(res, request.responseFormat || TranscriptionFormat.JSON);
        return reply.type(answer.contentType).send(answer.body);
      },
    );
  });
}
