import type { estypes } from "@elastic/elasticsearch";
import type { TEXT_SEARCH_LANGUAGES } from "../../platform/db/text-search.js";
import type { ChunkRecord, Metadata } from "../backend.js";
import { SearchBackendError } from "./errors.js";

/**
 * How chunks are laid out in Elasticsearch. One index per embedding size, `<prefix>-<dims>`, shared by every
 * collection: the reference system's index per collection ran into the cluster's shard limit, and a `dense_vector`
 * has one size per index. A composable template (`<prefix>-*`) carries analysis and mappings; each index only adds
 * its `dims`. PostgreSQL stays the source of truth, so an index can always be rebuilt from the `chunk` table.
 *
 * Text: a chunk's text is written to exactly one field, `content_<language>` of its collection's language, analysed
 * for that language; it is not copied into the other languages' fields (that would index every chunk N times). A
 * lexical search queries the fields of the scopes' languages, so each collection is matched with its own analyzer.
 *
 * Metadata: `metadata` is kept as written (`enabled: false`: in `_source`, never indexed, never a mapping update), and
 * each value is indexed again by type in one of three `flattened` fields, so that matching is type-exact like the
 * PostgreSQL backend (`{"year": 2020}` never matches `"2020"`) and user keys never add mapped fields (an object of
 * doubles under a dynamic template would add one field per distinct key across all tenants and end in "Limit of total
 * fields exceeded", and keys `a` and `a.b` would clash as a number and an object). `flattened` indexes every leaf as a keyword and compares ranges as bytes, so numbers are written
 * in {@link encodeNumber}'s order-preserving form; strings compare in byte order (PostgreSQL's "C" collation) and
 * booleans as "false" < "true".
 */

export type TextSearchLanguage = (typeof TEXT_SEARCH_LANGUAGES)[number];

/** The analyzer of each supported language; typed by the migration's list, so adding a language there fails here. */
const ANALYZERS: Readonly<Record<TextSearchLanguage, string>> = {
  simple: "passerelle_simple",
  french: "passerelle_french",
  english: "english",
  german: "german",
  italian: "italian",
  spanish: "spanish",
  portuguese: "portuguese",
  dutch: "dutch",
};

export const isTextSearchLanguage = (language: string): language is TextSearchLanguage =>
  Object.hasOwn(ANALYZERS, language);

/** The field that holds the text of a chunk in this language. */
export function contentField(language: string): `content_${TextSearchLanguage}` {
  if (!isTextSearchLanguage(language))
    throw new SearchBackendError(`unsupported text-search language: ${language}`, { retryable: false });
  return `content_${language}`;
}

export const indexName = (prefix: string, dims: number) => `${prefix}-${dims}`;
export const indexPattern = (prefix: string) => `${prefix}-*`;

/** Bumped whenever the template changes, so operators can tell which layout an index was created with. */
export const TEMPLATE_VERSION = 1;

/**
 * French is built by hand (the built-in `french` analyzer does not fold accents): elision of l', d', qu'…, lowercase,
 * stop words, then ASCII folding so "eleve" finds "élève" as PostgreSQL's `unaccent` does, then the light stemmer.
 * Stop words come before folding because the list is accented ("été" must be removed before it becomes "ete").
 * The other languages use Elasticsearch's built-in analyzers, which stem but do not fold accents.
 */
const ANALYSIS: estypes.IndicesIndexSettingsAnalysis = {
  filter: {
    passerelle_french_elision: {
      type: "elision",
      articles_case: true,
      articles: ["l", "m", "t", "qu", "n", "s", "j", "d", "c", "jusqu", "quoiqu", "lorsqu", "puisqu"],
    },
    passerelle_french_stop: { type: "stop", stopwords: "_french_" },
    passerelle_french_stemmer: { type: "stemmer", language: "light_french" },
  },
  analyzer: {
    passerelle_french: {
      type: "custom",
      tokenizer: "standard",
      filter: [
        "passerelle_french_elision",
        "lowercase",
        "passerelle_french_stop",
        "asciifolding",
        "passerelle_french_stemmer",
      ],
    },
    // The fallback for `simple` collections: words, lowercased and unaccented, no stemming (PostgreSQL's `simple`).
    passerelle_simple: { type: "custom", tokenizer: "standard", filter: ["lowercase", "asciifolding"] },
  },
};

/** HNSW over float vectors, like pgvector's index; `int8_hnsw`/`bbq_hnsw` would trade recall for memory. */
export const vectorMapping = (dims?: number): estypes.MappingDenseVectorProperty => ({
  type: "dense_vector",
  ...(dims === undefined ? {} : { dims }),
  index: true,
  similarity: "cosine",
  index_options: { type: "hnsw", m: 16, ef_construction: 100 },
});

const MAPPINGS: estypes.MappingTypeMapping = {
  // Strict: a typo in a field name fails the bulk item instead of silently adding a mapping.
  dynamic: "strict",
  properties: {
    collection_id: { type: "keyword" },
    document_id: { type: "keyword" },
    chunk_id: { type: "integer" },
    language: { type: "keyword" },
    ...Object.fromEntries(
      Object.entries(ANALYZERS).map(([language, analyzer]) => [`content_${language}`, { type: "text", analyzer }]),
    ),
    metadata: { type: "object", enabled: false },
    metadata_string: { type: "flattened" },
    metadata_number: { type: "flattened" },
    metadata_boolean: { type: "flattened" },
    created: { type: "date" },
    // No dims here: an index created by `prepare` sets them; one auto-created by a bulk takes the first vector's size.
    embedding: vectorMapping(),
  },
};

/** The composable index template for every `<prefix>-*` index. */
export function indexTemplate(prefix: string): estypes.IndicesPutIndexTemplateRequest {
  return {
    name: prefix,
    index_patterns: [indexPattern(prefix)],
    priority: 200,
    version: TEMPLATE_VERSION,
    _meta: { description: "Passerelle chunks: one index per embedding size, all collections" },
    template: { settings: { analysis: ANALYSIS }, mappings: MAPPINGS },
  };
}

/**
 * A double as 16 hex digits whose byte order is the numeric order: the IEEE 754 bits with the sign bit flipped for
 * positives and every bit flipped for negatives. Lets `flattened` (keywords only) answer numeric ranges exactly.
 */
export function encodeNumber(value: number): string {
  if (!Number.isFinite(value)) throw new RangeError(`not a JSON number: ${value}`);
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value === 0 ? 0 : value); // -0 and 0 are one value
  let high = view.getUint32(0);
  let low = view.getUint32(4);
  if (high & 0x8000_0000) {
    high = ~high >>> 0;
    low = ~low >>> 0;
  } else high = (high | 0x8000_0000) >>> 0;
  return high.toString(16).padStart(8, "0") + low.toString(16).padStart(8, "0");
}

/** The `_source` of a chunk document. */
export interface ChunkSource {
  collection_id: string;
  document_id: string;
  chunk_id: number;
  language: TextSearchLanguage;
  metadata: Metadata;
  metadata_string: Record<string, string>;
  metadata_number: Record<string, string>;
  metadata_boolean: Record<string, string>;
  created: string;
  embedding?: number[];
  [content: `content_${string}`]: string;
}

/** The document written for a chunk, its text in the field of its collection's language. */
export function chunkDocument(chunk: ChunkRecord, language: string): ChunkSource {
  const field = contentField(language);
  const doc: ChunkSource = {
    collection_id: chunk.collectionId,
    document_id: chunk.documentId,
    chunk_id: chunk.id,
    language: language as TextSearchLanguage,
    metadata: chunk.metadata,
    metadata_string: {},
    metadata_number: {},
    metadata_boolean: {},
    created: chunk.createdAt.toISOString(),
    embedding: chunk.embedding,
  };
  doc[field] = chunk.content;
  for (const [key, value] of Object.entries(chunk.metadata)) {
    if (typeof value === "string") doc.metadata_string[key] = value;
    else if (typeof value === "number") doc.metadata_number[key] = encodeNumber(value);
    else doc.metadata_boolean[key] = String(value);
  }
  return doc;
}

/** A chunk's `_id`: its document and position as a string, so no two chunks share one (never a sum of ids). */
export const chunkDocumentId = (chunk: { documentId: string; id: number }) => `${chunk.documentId}:${chunk.id}`;
