import type TurndownService from "turndown";

let converter: Promise<TurndownService> | undefined;

/**
 * HTML → Markdown for the DOCX and HTML parsers, so that headings, lists and emphasis survive as Markdown the
 * markdown splitter can cut on. Loaded on first use: only parser workers ever pay for turndown.
 */
export async function htmlToMarkdown(html: string): Promise<string> {
  converter ??= createConverter();
  return (await converter).turndown(html);
}

async function createConverter(): Promise<TurndownService> {
  const { default: Turndown } = await import("turndown");
  const td = new Turndown({ headingStyle: "atx", codeBlockStyle: "fenced", bulletListMarker: "-", hr: "---" });
  // turndown keeps the text of these by default, which would index JavaScript and CSS as prose
  td.remove(["script", "style", "noscript", "template", "iframe", "object", "embed"]);
  // images keep only their alt text: a URL means nothing to an embedding model, and data: URIs (inline images)
  // would put kilobytes of base64 into the chunks
  td.addRule("images", {
    filter: "img",
    replacement: (_content, node) => {
      const img = node as unknown as { getAttribute(name: string): string | null };
      return (img.getAttribute("alt") ?? "").replace(/\s+/g, " ").trim();
    },
  });
  return td;
}

/**
 * Final clean-up shared by every format: PostgreSQL text columns reject NUL, CRLF would double the newlines the
 * splitter counts, and runs of blank lines carry nothing.
 */
export function normalizeText(text: string): string {
  return text
    .replace(/\r\n?/g, "\n")
    .replaceAll("\u0000", "")
    .replace(/[ \t]+\n/g, "\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}
