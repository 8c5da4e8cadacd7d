/**
 * GPT-2's byte-pair tokenizer (js-tiktoken's "gpt2" encoding, the same tables as the
 * book's `tiktoken.get_encoding("gpt2")`).
 *
 * Text is always encoded as text: the literal string "<|endoftext|>" inside a data
 * entry becomes ordinary tokens, never the special token 50256. js-tiktoken (like
 * tiktoken) would otherwise throw on it; letting it through as the special token
 * would let an entry end its own response early. The collate function is the only
 * place that adds END_OF_TEXT.
 */
import { getEncoding, Tiktoken } from "js-tiktoken";

/** GPT-2's `<|endoftext|>` token id, also used as the padding token (section 7.3). */
export const END_OF_TEXT = 50256;
export const END_OF_TEXT_STRING = "<|endoftext|>";

let cached: Tiktoken | undefined;

/** The shared gpt2 encoding (building its tables takes ~100 ms, so it is built once). */
export function getTokenizer(): Tiktoken {
  if (!cached) cached = getEncoding("gpt2");
  return cached;
}

export interface EncodeOptions {
  /** encode the literal "<|endoftext|>" as the special token 50256 (the book's
   *  `allowed_special={"<|endoftext|>"}` in `text_to_token_ids`); default false: as text */
  allowEndOfText?: boolean;
}

/** Token ids for `text`. */
export function encodeText(text: string, opts: EncodeOptions = {}): number[] {
  // disallowedSpecial = [] means "no special-token check": the marker is split like any other text
  return opts.allowEndOfText
    ? getTokenizer().encode(text, [END_OF_TEXT_STRING])
    : getTokenizer().encode(text, [], []);
}

/** Text for token ids (50256 decodes to "<|endoftext|>"). */
export function decodeTokens(ids: number[] | Int32Array): string {
  return getTokenizer().decode(Array.from(ids));
}
