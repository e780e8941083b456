import { htmlToMarkdown } from "./markdown.js";
import type { ParsedDocument } from "./types.js";

type LinkedomDocument = ReturnType<typeof import("linkedom").parseHTML>["document"];

/**
 * HTML → Markdown: linkedom builds the DOM (light, no browser emulation), readability keeps the main content and
 * drops navigation, footers and asides, turndown writes Markdown. Readability is only trusted on pages it deems
 * readerable (`isProbablyReaderable`: enough long paragraphs): on a short page it happily returns the footer as
 * "the article". Elsewhere, and when it finds nothing, the whole body is kept: an upload is content the user
 * chose, not a page to declutter.
 */
export async function parseHtml(source: string): Promise<ParsedDocument> {
  const [{ parseHTML }, { Readability, isProbablyReaderable }] = await Promise.all([
    import("linkedom"),
    import("@mozilla/readability"),
  ]);
  const document = withBody(source, parseHTML);
  const dom = document as unknown as ConstructorParameters<typeof Readability>[0];
  const bodyHtml = document.body.innerHTML;
  const pageTitle = document.title.trim() || null;
  const lang = document.documentElement.getAttribute("lang")?.trim();
  // readability rewrites the tree it is given, hence the body copied above
  const article = isProbablyReaderable(dom) ? new Readability(dom).parse() : null;
  const useArticle = article?.content != null && (article.textContent ?? "").trim() !== "";
  const text = await htmlToMarkdown(useArticle ? (article.content ?? "") : bodyHtml);
  const metadata: Record<string, string> = {};
  if (article?.lang || lang) metadata.lang = article?.lang || (lang as string);
  if (article?.siteName) metadata.siteName = article.siteName;
  if (article?.byline) metadata.byline = article.byline;
  return { title: article?.title?.trim() || pageTitle, text, metadata };
}

/**
 * linkedom (htmlparser2) does not build the implied html/head/body elements of the HTML5 algorithm: a fragment or
 * a page without a body tag has no `document.body`, and readability then sees nothing. Such input is re-parsed
 * inside an explicit skeleton, its title moved back into the head.
 */
function withBody(source: string, parseHTML: typeof import("linkedom").parseHTML): LinkedomDocument {
  const first = parseHTML(source).document;
  if (first.querySelector("body")) return first;
  const title = first.querySelector("title")?.textContent ?? "";
  for (const el of first.querySelectorAll("head, title, meta, link")) el.remove();
  const html = first.querySelector("html");
  // linkedom nodes serialise to their markup with toString()
  const nodes = first.childNodes as unknown as ArrayLike<{ nodeType: number }>;
  const inner = html
    ? html.innerHTML
    : Array.from(nodes, (n) => (n.nodeType === 10 /* doctype */ ? "" : String(n))).join("");
  const escaped = title.replaceAll("&", "&amp;").replaceAll("<", "&lt;");
  return parseHTML(`<!DOCTYPE html><html><head><title>${escaped}</title></head><body>${inner}</body></html>`).document;
}
