/**
 * The response of section 7.7, token by token: after each new token, the part of the answer that
 * can be sent now, so that the pieces sent add up to exactly what `extractResponse` gives for the
 * whole text (what `npm run generate` prints).
 *
 * `extractResponse` takes the text after the prompt, removes every "### Response:" and trims
 * whitespace at both ends. While tokens arrive, three things could still change what is already
 * there, so they are held back until the next tokens decide them:
 *   - a tail that may yet become the response header ("###", "### Resp"): it would be removed;
 *   - trailing whitespace: it is trimmed unless more text follows it;
 *   - a character whose UTF-8 bytes are split across tokens (GPT-2's byte-level tokens do that
 *     with emoji and most non-Latin text): it decodes as U+FFFD until its last byte comes.
 */
import type { PromptStyle } from "../data/prompt";
import { responseMarker } from "../data/prompt";
import { decodeTokens } from "../data/tokenizer";
import { extractResponse } from "../generate/generate";

/** How much of the end of `text` is a proper beginning of `marker` (0 if none). */
export function markerPrefixLength(text: string, marker: string): number {
  for (let n = Math.min(marker.length - 1, text.length); n > 0; n--) {
    if (text.endsWith(marker.slice(0, n))) return n;
  }
  return 0;
}

/** The answer that the text generated so far (`raw`, after the prompt) can already promise. */
export function settledResponse(raw: string, marker: string): string {
  let safe = raw.replace(/\uFFFD+$/, ""); // a character still missing bytes
  safe = safe.slice(0, safe.length - markerPrefixLength(safe, marker));
  return safe.split(marker).join("").trim();
}

export class ResponseStream {
  private readonly ids: number[];
  private readonly marker: string;
  private sent = "";

  /** `promptIds` are the prompt's tokens, as generation starts from them. */
  constructor(private readonly prompt: string, promptIds: number[], private readonly style: PromptStyle = "alpaca") {
    this.ids = promptIds.slice();
    this.marker = responseMarker(style);
  }

  /** How many tokens were generated so far. */
  newTokens = 0;

  /** Add one generated token; returns the text to send now ("" when nothing is settled yet). */
  push(id: number): string {
    this.ids.push(id);
    this.newTokens++;
    const raw = decodeTokens(this.ids).slice(this.prompt.length);
    return this.advance(settledResponse(raw, this.marker));
  }

  /** Generation ended: the rest of the answer (extractResponse of the whole text). */
  finish(): string {
    return this.advance(extractResponse(decodeTokens(this.ids), this.prompt, this.style));
  }

  /** Everything sent so far: after finish(), the whole response. */
  get text(): string {
    return this.sent;
  }

  private advance(settled: string): string {
    if (!settled.startsWith(this.sent)) {
      // cannot happen if settledResponse only promises what stays (checked by the tests); better loud than garbled
      throw new Error(`response stream: ${JSON.stringify(settled)} does not extend what was sent, ${JSON.stringify(this.sent)}`);
    }
    const delta = settled.slice(this.sent.length);
    this.sent = settled;
    return delta;
  }
}
