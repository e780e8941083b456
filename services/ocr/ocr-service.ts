import { randomUUID } from "node:crypto";
import { create, type JsonObject } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  type OcrService,
  type ProcessDocumentRequest,
  ProcessDocumentResponseSchema,
} from "../../gen/passerelle/ocr/v1/ocr_service_pb.js";
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
import { runBounded } from "../platform/bounded.js";
import { type Principal, principalOf } from "../platform/context.js";
import { invalidArgument } from "../platform/errors.js";
import { countTokens } from "../platform/tokenizer.js";
import { detectKind } from "./detect.js";
import { type LoadedDocument, loadUrl } from "./document-source.js";
import { ocrError } from "./errors.js";
import { imageHeaderSize } from "./image-header.js";
import { type RenderPool, shareBytes } from "./render-pool.js";
import { DEFAULT_OCR_PROMPT, maxTokensPerPage, type PageAnswer, pageChatBody, pageFromJson } from "./upstream-json.js";

/** The largest `max_tokens` a page may ask for: OpenAI's and vLLM's bound (uint32). */
const MAX_TOKENS = 4_294_967_295;

export interface OcrDeps extends ModelCallDeps {
  /** PDF rendering and image decoding off the event loop. */
  render: RenderPool;
  /** Largest decoded document (the platform's upload limit). */
  maxFileBytes: number;
  /** Pages per request at most. */
  maxPages: number;
  /** Pages of one request in flight at once. */
  concurrency: number;
  /** Prompt tokens reserved per page image (the upstream's count is billed). */
  imageTokensPerPage: number;
  /** Completion tokens reserved per page when the client sets no max_tokens. */
  defaultMaxTokens: number;
  /** URL prefixes the gateway may fetch documents from. */
  urlAllowlist: readonly string[];
  fetch?: typeof fetch;
}

const OCR_TYPE = "image-text-to-text";

/** A page to transcribe: its index in the document, and how to get its image. */
interface PageJob {
  index: number;
  image(signal: AbortSignal): Promise<{ url: string; width: number; height: number; dpi: number }>;
}

interface PageResult extends PageAnswer {
  index: number;
  width: number;
  height: number;
  dpi: number;
}

/** The selected pages, sorted and without duplicates; all of them when none is named. */
function selectPages(requested: readonly number[], pageCount: number, maxPages: number): number[] {
  const pages = requested.length ? [...new Set(requested)].sort((a, b) => a - b) : [...Array(pageCount).keys()];
  const outside = pages.find((p) => p >= pageCount);
  if (outside !== undefined) {
    throw ocrError(
      "PAGE_OUT_OF_RANGE",
      `Page ${outside} does not exist: the document has ${pageCount} page${pageCount === 1 ? "" : "s"} (numbered from 0).`,
      "pages",
    );
  }
  if (pages.length > maxPages) {
    throw ocrError(
      "TOO_MANY_PAGES",
      `This request would transcribe ${pages.length} pages; at most ${maxPages} are accepted per request ` +
        "(select fewer with 'pages').",
      "pages",
    );
  }
  return pages;
}

/** OcrService: documents to Markdown through an `image-text-to-text` model, one chat completion per page. */
export function createOcrService(deps: OcrDeps): ServiceImpl<typeof OcrService> {
  // The answer comes whole: the first-token bound is the provider's total timeout.
  const target = (p: ProviderRoute) => upstreamTarget(p, { ...deps, firstTokenTimeoutMs: Number.MAX_SAFE_INTEGER });

  async function load(req: ProcessDocumentRequest, signal: AbortSignal): Promise<LoadedDocument & { param: string }> {
    const opts = { maxBytes: deps.maxFileBytes, allowlist: deps.urlAllowlist, fetch: deps.fetch };
    const d = req.document;
    switch (d.case) {
      case "documentUrl":
        return { ...(await loadUrl(d.value, opts, "document_url", signal)), param: "document_url" };
      case "imageUrl":
        return { ...(await loadUrl(d.value, opts, "image_url", signal)), param: "image_url" };
      case "content": {
        const size = d.value.data.length;
        if (size > deps.maxFileBytes) {
          throw ocrError(
            "FILE_TOO_LARGE",
            `The document is ${size} bytes; the largest accepted is ${deps.maxFileBytes} bytes.`,
            "content",
          );
        }
        if (size === 0) throw ocrError("EMPTY_DOCUMENT", "The document is empty.", "content");
        return { bytes: d.value.data, declaredMime: d.value.mimeType, param: "content" };
      }
      default:
        throw invalidArgument("'document' is required: a document_url, an image_url or the content.", "document");
    }
  }

  /** The pages to transcribe, each knowing how to produce its image (PDF pages are rendered when their turn comes). */
  async function plan(req: ProcessDocumentRequest, doc: LoadedDocument & { param: string }, signal: AbortSignal) {
    const kind = await detectKind(doc.bytes, doc.declaredMime, doc.param);
    if (kind.kind === "image") {
      const size = imageHeaderSize(doc.bytes, kind.mime);
      if (!size)
        throw ocrError("CORRUPT_DOCUMENT", `The ${kind.mime} image is damaged: its header cannot be read.`, doc.param);
      selectPages(req.pages, 1, deps.maxPages);
      const url = `data:${kind.mime};base64,${Buffer.from(doc.bytes).toString("base64")}`;
      return [{ index: 0, image: async () => ({ url, ...size, dpi: 0 }) }] satisfies PageJob[];
    }
    const pageCount = await deps.render.pageCount(doc.bytes, signal, doc.param);
    if (pageCount === 0) throw ocrError("EMPTY_DOCUMENT", "The PDF has no pages.", doc.param);
    const shared = shareBytes(doc.bytes);
    return selectPages(req.pages, pageCount, deps.maxPages).map(
      (index): PageJob => ({
        index,
        async image(s) {
          const page = await deps.render.render(shared, index, s, doc.param);
          const url = `data:image/png;base64,${Buffer.from(page.png).toString("base64")}`;
          return { url, width: page.width, height: page.height, dpi: page.dpi };
        },
      }),
    );
  }

  /** One page's chat completion (`callModel`: failover, timing); rendering the page is not upstream time. */
  async function transcribe(
    model: ChatModel,
    req: ProcessDocumentRequest,
    prompt: string,
    job: PageJob,
    signal: AbortSignal,
    onProvider: (p: ProviderRoute) => void,
    clock: UpstreamClock,
  ): Promise<PageResult> {
    const image = await job.image(signal);
    const estimate = { prompt, imageTokens: deps.imageTokensPerPage };
    const answer = await callModel(deps, model, signal, clock, async (lease) => {
      onProvider(lease.provider);
      const body = pageChatBody({
        upstreamModel: lease.provider.upstreamModel,
        prompt,
        imageUrl: image.url,
        user: req.user,
        extra: req.extra as JsonObject | undefined,
      });
      const res = await deps.upstream.postJson(target(lease.provider), "/v1/chat/completions", body, signal);
      return pageFromJson(res.body, estimate);
    });
    return { ...answer, index: job.index, width: image.width, height: image.height, dpi: image.dpi };
  }

  /** What a request must pass before its admission: its fields, the model it may use, and a document it can read. */
  async function admissible(req: ProcessDocumentRequest, principal: Principal, signal: AbortSignal) {
    if (!req.model) throw invalidArgument("'model' is required.", "model");
    if (req.prompt !== undefined && req.prompt.trim() === "") {
      throw invalidArgument("'prompt' must not be empty when set.", "prompt");
    }
    const { model, limits } = await resolveOfType(
      deps.models,
      principal,
      req.model,
      OCR_TYPE,
      `a model that can read documents (OCR needs an ${OCR_TYPE} model)`,
    );
    const doc = await load(req, signal);
    const jobs = await plan(req, doc, signal);
    const prompt = req.prompt ?? DEFAULT_OCR_PROMPT;
    // The instruction is counted only when limits or prices use the estimate (the tokenizer loads on first use).
    const priced = model.costPromptPerMillion > 0 || model.costCompletionPerMillion > 0;
    const perPagePrompt = deps.imageTokensPerPage + (limits || priced ? countTokens(prompt) : 0);
    const perPageMax = maxTokensPerPage(req.extra as JsonObject | undefined, deps.defaultMaxTokens);
    // vLLM's own bound (a uint32 in OpenAI's schema): larger would also overflow the admission's estimate.
    if (perPageMax > MAX_TOKENS) {
      throw invalidArgument(`'max_tokens' must be at most ${MAX_TOKENS}.`, "max_tokens");
    }
    return { model, limits, jobs, prompt, perPagePrompt, perPageMax, docBytes: doc.bytes.length };
  }

  async function processDocument(req: ProcessDocumentRequest, ctx: HandlerContext) {
    const principal = principalOf(ctx);
    const { model, limits, jobs, prompt, perPagePrompt, perPageMax, docBytes } = await beforeAdmission(
      deps.governor,
      ctx,
      "ocr",
      req.model,
      () => admissible(req, principal, ctx.signal),
    );
    // One admission for the whole document: every page's worst case is reserved before the first page is sent.
    const admission = await admitCall(deps.governor, ctx, {
      principal,
      endpoint: "ocr",
      model,
      limits,
      promptTokens: perPagePrompt * jobs.length,
      maxCompletionTokens: perPageMax * jobs.length,
    });
    let provider: ProviderRoute | undefined;
    let promptTokens = 0;
    let completionTokens = 0;
    const tally = (r: PageResult) => {
      promptTokens += r.promptTokens;
      completionTokens += r.completionTokens;
    };
    let pages: PageResult[];
    // Pages are transcribed in parallel: their upstream time counts once (rendering a page is the gateway's time).
    const clock = createUpstreamClock();
    try {
      pages = await runBounded(
        jobs.length,
        deps.concurrency,
        ctx.signal,
        (i, signal) =>
          transcribe(
            model,
            req,
            prompt,
            jobs[i] as PageJob,
            signal,
            (p) => {
              provider ??= p;
            },
            clock,
          ),
        tally,
      );
    } catch (err) {
      // The pages that were transcribed before the failure were spent upstream: they are billed.
      admission.finish({ ...statusOf(err), promptTokens, completionTokens, servedBy: servedBy(provider) });
      throw err;
    }
    const settled = admission.finish({ status: 200, promptTokens, completionTokens, servedBy: servedBy(provider) });
    ctx.responseHeader.set(SERVER_TIMING, upstreamTiming(clock));
    return create(ProcessDocumentResponseSchema, {
      id: `ocr-${randomUUID().replaceAll("-", "")}`,
      model: req.model,
      pages: pages.map((p) => ({
        index: p.index,
        markdown: p.markdown,
        dimensions: { dpi: p.dpi, height: p.height, width: p.width },
      })),
      usageInfo: { pagesProcessed: pages.length, docSizeBytes: BigInt(docBytes) },
      usage: {
        promptTokens,
        completionTokens,
        totalTokens: promptTokens + completionTokens,
        cost: settled.cost,
        carbon: { kwh: settled.carbon.kWh, kgco2eq: settled.carbon.kgCO2eq },
      },
    });
  }

  return { processDocument };
}
