import { create } from "@bufbuild/protobuf";
import { Code, type ServiceImpl } from "@connectrpc/connect";
import { TimestampGranularity, TranscriptionFormat } from "../../gen/passerelle/audio/v1/audio_pb.js";
import {
  type AudioService,
  type CreateTranscriptionRequest,
  CreateTranscriptionResponseSchema,
} from "../../gen/passerelle/audio/v1/audio_service_pb.js";
import { statusOf } from "../governance/index.js";
import {
  admitCall,
  beforeAdmission,
  type ChatModel,
  callModel,
  createUpstreamClock,
  type ModelCallDeps,
  type ProviderRoute,
  resolveOfType,
  SERVER_TIMING,
  servedBy,
  type UpstreamClock,
  upstreamTarget,
  upstreamTiming,
} from "../inference/index.js";
import { type Principal, principalOf } from "../platform/context.js";
import { invalidArgument, rpcError } from "../platform/errors.js";
import { countTokens } from "../platform/tokenizer.js";
import { readAudio } from "./audio-file.js";
import { toSrt, toVtt } from "./subtitles.js";
import {
  refusesVerbose,
  type Segment,
  transcriptFromJson,
  type UpstreamFormat,
  type UpstreamTranscript,
  upstreamTranscriptionForm,
} from "./upstream-form.js";

export interface AudioDeps extends ModelCallDeps {
  /** Largest audio file accepted, in bytes (the platform's upload limit). */
  maxFileBytes: number;
  /** Completion tokens reserved against limits and budgets before the transcript is known. */
  defaultMaxTokens: number;
}

const ASR_TYPE = "automatic-speech-recognition";
const PATH = "/v1/audio/transcriptions";
const VERBOSE = new Set([TranscriptionFormat.VERBOSE_JSON, TranscriptionFormat.SRT, TranscriptionFormat.VTT]);

/** The request's own checks, before the model is resolved. */
function validate(req: CreateTranscriptionRequest, maxFileBytes: number): void {
  if (!req.model) throw invalidArgument("'model' is required.", "model");
  if (req.file.length > maxFileBytes) {
    throw rpcError(
      Code.InvalidArgument,
      `The file is ${req.file.length} bytes; the largest accepted is ${maxFileBytes} bytes.`,
      "FILE_TOO_LARGE",
      { param: "file" },
    );
  }
  if (req.file.length === 0) throw invalidArgument("'file' is required and must not be empty.", "file", "EMPTY_FILE");
  if (!(req.responseFormat in TranscriptionFormat)) {
    throw invalidArgument("'response_format' is not a known format.", "response_format");
  }
  if (req.temperature !== undefined && !(req.temperature >= 0 && req.temperature <= 1)) {
    throw invalidArgument("'temperature' must be between 0 and 1.", "temperature");
  }
  if (
    req.timestampGranularities.includes(TimestampGranularity.WORD) &&
    req.responseFormat !== TranscriptionFormat.VERBOSE_JSON
  ) {
    throw invalidArgument(
      "Word timestamps need response_format 'verbose_json'.",
      "timestamp_granularities",
      "WORD_TIMESTAMPS_NEED_VERBOSE_JSON",
    );
  }
}

/** The whole text as one segment over the whole audio: what a verbose answer holds when the upstream gave no timing. */
function wholeSegment(text: string, duration: number, temperature: number): Segment {
  return {
    id: 0,
    seek: 0,
    start: 0,
    end: duration,
    text,
    tokens: [],
    temperature,
    avgLogprob: 0,
    compressionRatio: 0,
    noSpeechProb: 0,
  };
}

/** AudioService: speech to text over the registry's `automatic-speech-recognition` models, governed like chat. */
export function createAudioService(deps: AudioDeps): ServiceImpl<typeof AudioService> {
  // The answer comes whole: the first-token bound is the provider's total timeout.
  const target = (p: ProviderRoute) => upstreamTarget(p, { ...deps, firstTokenTimeoutMs: Number.MAX_SAFE_INTEGER });

  /**
   * One transcription (`callModel`: failover, timing). A verbose answer refused by the upstream (vLLM before 0.10,
   * models without segment timestamps) is asked again as `json` from the same provider.
   */
  function transcribe(
    model: ChatModel,
    req: CreateTranscriptionRequest,
    audio: Blob,
    signal: AbortSignal,
    onProvider: (p: ProviderRoute) => void,
    clock: UpstreamClock,
  ): Promise<UpstreamTranscript> {
    const wanted: UpstreamFormat = VERBOSE.has(req.responseFormat) ? "verbose_json" : "json";
    return callModel(deps, model, signal, clock, async (lease) => {
      onProvider(lease.provider);
      const call = (format: UpstreamFormat) =>
        deps.upstream.postForm(
          target(lease.provider),
          PATH,
          upstreamTranscriptionForm(req, audio, lease.provider.upstreamModel, format),
          signal,
        );
      try {
        return transcriptFromJson((await call(wanted)).body);
      } catch (err) {
        if (wanted !== "verbose_json" || !refusesVerbose(err)) throw err;
        return transcriptFromJson((await call("json")).body);
      }
    });
  }

  /** What a request must pass before its admission: its fields, the model it may use, and a file that is audio. */
  async function admissible(req: CreateTranscriptionRequest, principal: Principal) {
    validate(req, deps.maxFileBytes);
    const { model, limits } = await resolveOfType(
      deps.models,
      principal,
      req.model,
      ASR_TYPE,
      "a speech recognition model",
    );
    // Read before anything is reserved or forwarded: a file that is not audio costs nothing and reaches no one.
    const { duration } = await readAudio(req.file);
    const promptTokens = req.prompt ? countTokens(req.prompt) : 0;
    return { model, limits, duration, promptTokens };
  }

  return {
    async createTranscription(req, ctx) {
      const principal = principalOf(ctx);
      const { model, limits, duration, promptTokens } = await beforeAdmission(
        deps.governor,
        ctx,
        "audio.transcriptions",
        req.model,
        () => admissible(req, principal),
      );
      const admission = await admitCall(deps.governor, ctx, {
        principal,
        endpoint: "audio.transcriptions",
        model,
        limits,
        promptTokens,
        maxCompletionTokens: deps.defaultMaxTokens,
      });
      let provider: ProviderRoute | undefined;
      let up: UpstreamTranscript;
      const clock = createUpstreamClock();
      try {
        const audio = new Blob([req.file]);
        up = await transcribe(
          model,
          req,
          audio,
          ctx.signal,
          (p) => {
            provider = p;
          },
          clock,
        );
      } catch (err) {
        admission.finish({ ...statusOf(err), promptTokens: 0, completionTokens: 0, servedBy: servedBy(provider) });
        throw err;
      }
      // The upstream's count, else the segments' token ids (exact), else an estimate from the text.
      const segmentTokens = up.segments.reduce((n, s) => n + s.tokens.length, 0);
      const completionTokens = up.outputTokens ?? (segmentTokens || (up.text ? countTokens(up.text) : 0));
      const billedPrompt = up.outputTokens !== undefined ? (up.inputTokens ?? 0) : promptTokens;
      const settled = admission.finish({
        status: 200,
        promptTokens: billedPrompt,
        completionTokens,
        servedBy: servedBy(provider),
        audioSeconds: duration,
      });
      ctx.responseHeader.set(SERVER_TIMING, upstreamTiming(clock));
      const verbose = VERBOSE.has(req.responseFormat);
      const segments =
        verbose && up.segments.length === 0 && up.text
          ? [wholeSegment(up.text, duration, req.temperature ?? 0)]
          : verbose
            ? up.segments
            : [];
      const wantsWords = req.timestampGranularities.includes(TimestampGranularity.WORD);
      const subtitles =
        req.responseFormat === TranscriptionFormat.SRT
          ? toSrt(segments)
          : req.responseFormat === TranscriptionFormat.VTT
            ? toVtt(segments)
            : "";
      return create(CreateTranscriptionResponseSchema, {
        model: req.model,
        text: up.text,
        language: up.language ?? req.language ?? "",
        duration,
        segments,
        words: wantsWords ? up.words : [],
        subtitles,
        usage: {
          promptTokens: billedPrompt,
          completionTokens,
          totalTokens: billedPrompt + completionTokens,
          audioSeconds: duration,
          cost: settled.cost,
          carbon: { kwh: settled.carbon.kWh, kgco2eq: settled.carbon.kgCO2eq },
        },
      });
    },
  };
}
