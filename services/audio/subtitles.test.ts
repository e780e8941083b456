import { describe, expect, it } from "vitest";
import { timestamp, toSrt, toVtt } from "./subtitles.js";

describe("subtitles", () => {
  it("writes timestamps as HH:MM:SS,mmm (SRT) and HH:MM:SS.mmm (VTT), rounding to the millisecond", () => {
    expect(timestamp(0, ",")).toBe("00:00:00,000");
    expect(timestamp(3.9149, ".")).toBe("00:00:03.915");
    expect(timestamp(3723.5, ",")).toBe("01:02:03,500");
    expect(timestamp(-1, ".")).toBe("00:00:00.000");
    expect(timestamp(Number.NaN, ".")).toBe("00:00:00.000");
  });

  const cues = [
    { start: 0, end: 2.5, text: " Bonjour à tous." },
    { start: 2.5, end: 61.25, text: " Deux lignes\n\n  ici --> là " },
  ];

  it("numbers SRT cues from 1, one blank line after each, blank lines inside a cue dropped", () => {
    expect(toSrt(cues)).toBe(
      "1\n00:00:00,000 --> 00:00:02,500\nBonjour à tous.\n\n" +
        "2\n00:00:02,500 --> 00:01:01,250\nDeux lignes\nici --> là\n\n",
    );
    expect(toSrt([])).toBe("");
  });

  it("writes VTT under its header, with the arrow escaped inside cue text", () => {
    expect(toVtt(cues)).toBe(
      "WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nBonjour à tous.\n\n" +
        "00:00:02.500 --> 00:01:01.250\nDeux lignes\nici --&gt; là\n\n",
    );
    expect(toVtt([])).toBe("WEBVTT\n\n");
  });
});
