import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { EncodingFormat } from "../../gen/passerelle/embeddings/v1/embeddings_pb.js";
import { CreateEmbeddingsResponseSchema } from "../../gen/passerelle/embeddings/v1/embeddings_service_pb.js";
import { validateOpenAI } from "../../test/support/openai-schema.js";
import { InvalidRequest } from "./chat.js";
import { embeddingsRequestFromJson, embeddingsResponseJson, float32Base64 } from "./embeddings.js";

function invalid(body: unknown): InvalidRequest {
  try {
    embeddingsRequestFromJson(body);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidRequest);
    return err as InvalidRequest;
  }
  throw new Error(`expected ${JSON.stringify(body)} to be refused`);
}

/** What OpenAI clients do with a base64 embedding (openai-node's toFloat32Array). */
const decode = (b64: string) => {
  const buf = Buffer.from(b64, "base64");
  return Array.from(new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length)));
};

describe("embeddingsRequestFromJson", () => {
  it("reads each input form; a single string or token list is the one-element list", () => {
    const one = embeddingsRequestFromJson({ model: "m", input: "bonjour" });
    expect(one.input).toMatchObject({ case: "texts", value: { texts: ["bonjour"] } });
    const many = embeddingsRequestFromJson({ model: "m", input: ["a", "b"] });
    expect(many.input).toMatchObject({ case: "texts", value: { texts: ["a", "b"] } });
    const ids = embeddingsRequestFromJson({ model: "m", input: [1, 2, 3] });
    expect(ids.input.case).toBe("tokens");
    expect(ids.input.case === "tokens" && ids.input.value.inputs.map((t) => t.ids)).toEqual([[1, 2, 3]]);
    const lists = embeddingsRequestFromJson({ model: "m", input: [[1], [2, 3]] });
    expect(lists.input.case === "tokens" && lists.input.value.inputs.map((t) => t.ids)).toEqual([[1], [2, 3]]);
  });

  it("keeps unset options unset, reads the known ones and carries unknown fields in extra", () => {
    const bare = embeddingsRequestFromJson({ model: "m", input: "x" });
    expect(bare.dimensions).toBeUndefined();
    expect(bare.user).toBeUndefined();
    expect(bare.encodingFormat).toBe(EncodingFormat.UNSPECIFIED);
    expect(bare.extra).toBeUndefined();
    const full = embeddingsRequestFromJson({
      model: "m",
      input: "x",
      dimensions: 128,
      encoding_format: "base64",
      user: "u-1",
      truncate_prompt_tokens: 512,
      additional_data: { a: [1, null] },
    });
    expect(full.dimensions).toBe(128);
    expect(full.encodingFormat).toBe(EncodingFormat.BASE64);
    expect(full.user).toBe("u-1");
    expect(full.extra).toEqual({ truncate_prompt_tokens: 512, additional_data: { a: [1, null] } });
    expect(embeddingsRequestFromJson({ model: "m", input: "x", encoding_format: "float" }).encodingFormat).toBe(
      EncodingFormat.FLOAT,
    );
  });

  it("refuses what it cannot read, naming the parameter", () => {
    expect(invalid(null).param).toBe("body");
    expect(invalid({ input: "x" }).param).toBe("model");
    expect(invalid({ model: "", input: "x" }).param).toBe("model");
    expect(invalid({ model: "m" }).param).toBe("input");
    expect(invalid({ model: "m", input: [] }).message).toMatch(/empty/);
    expect(invalid({ model: "m", input: 42 }).param).toBe("input");
    expect(invalid({ model: "m", input: [{ text: "x" }] }).param).toBe("input");
    expect(invalid({ model: "m", input: ["a", 1] }).param).toBe("input");
    expect(invalid({ model: "m", input: [1, "a"] }).param).toBe("input");
    expect(invalid({ model: "m", input: [1, -2] }).param).toBe("input");
    expect(invalid({ model: "m", input: [1.5] }).param).toBe("input");
    expect(invalid({ model: "m", input: [[1], 2] }).param).toBe("input");
    expect(invalid({ model: "m", input: [[1], []] }).param).toBe("input[1]");
    expect(invalid({ model: "m", input: [[1], [2, "x"]] }).param).toBe("input[1]");
    expect(invalid({ model: "m", input: "x", dimensions: 0 }).param).toBe("dimensions");
    expect(invalid({ model: "m", input: "x", dimensions: 1.5 }).param).toBe("dimensions");
    expect(invalid({ model: "m", input: "x", encoding_format: "int8" }).param).toBe("encoding_format");
    expect(invalid({ model: "m", input: "x", user: 7 }).param).toBe("user");
  });
});

describe("embeddingsResponseJson", () => {
  const floats = [0.1, -0.25, 1 / 3, 1e-8, -0, 123456.789, Math.PI];
  const res = create(CreateEmbeddingsResponseSchema, {
    model: "embeddings-default",
    data: [
      { index: 0, embedding: floats.map(Math.fround) },
      { index: 1, embedding: [0.5, 0.25] },
    ],
    usage: { promptTokens: 7, totalTokens: 7 },
  });

  it("writes OpenAI's CreateEmbeddingResponse with float vectors by default", () => {
    for (const format of [EncodingFormat.UNSPECIFIED, EncodingFormat.FLOAT]) {
      const json = embeddingsResponseJson(res, format);
      validateOpenAI("CreateEmbeddingResponse", json);
      expect(json).toEqual({
        object: "list",
        data: [
          { object: "embedding", index: 0, embedding: floats.map(Math.fround) },
          { object: "embedding", index: 1, embedding: [0.5, 0.25] },
        ],
        model: "embeddings-default",
        usage: { prompt_tokens: 7, total_tokens: 7 },
      });
    }
  });

  it("writes base64 of the little-endian float32 values: decoding gives back float32 of the floats", () => {
    const json = embeddingsResponseJson(res, EncodingFormat.BASE64) as {
      data: { embedding: string; index: number; object: string }[];
    };
    const [first, second] = json.data;
    expect(typeof first?.embedding).toBe("string");
    expect(decode(first?.embedding ?? "")).toEqual(Array.from(Float32Array.from(floats)));
    expect(decode(second?.embedding ?? "")).toEqual([0.5, 0.25]);
    // The envelope is OpenAI's; only the vectors' encoding differs.
    validateOpenAI("CreateEmbeddingResponse", {
      ...json,
      data: json.data.map((d) => ({ ...d, embedding: decode(d.embedding) })),
    });
  });

  it("encodes exactly as OpenAI: float32 little-endian bytes", () => {
    expect(float32Base64([1])).toBe(Buffer.from([0x00, 0x00, 0x80, 0x3f]).toString("base64"));
    expect(float32Base64([])).toBe("");
    const big = Array.from({ length: 4096 }, (_, i) => Math.sin(i));
    expect(decode(float32Base64(big))).toEqual(Array.from(Float32Array.from(big)));
  });
});
