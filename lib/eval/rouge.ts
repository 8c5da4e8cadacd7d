/**
 * ROUGE-L F1: an automatic score of a response against the reference output, with no judge.
 *
 * The longest common subsequence (LCS) of the two token lists: words that appear in both, in
 * the same order, not necessarily side by side. Precision = LCS / response tokens, recall =
 * LCS / reference tokens, F1 = their harmonic mean. Tokens as Google's `rouge-score` package
 * makes them (without its optional stemmer): lower-cased, everything but letters a-z and digits
 * turned into spaces, split on whitespace. Reported here on the judge's 0-100 scale.
 *
 * What it misses, and a judge catches: it counts shared words, not meaning. "Jane Austen." for
 * "The author of 'Pride and Prejudice' is Jane Austen." is right but scores low (the reference
 * has many more words); "cumulus" for "cumulonimbus" is wrong but a response that copies the
 * rest of the reference sentence scores high. Paraphrases, synonyms, a correct number written
 * differently, and fluent nonsense that repeats the question's words all fool it.
 */

/** Lower-case alphanumeric words, as rouge-score's default tokenizer. */
export function rougeTokens(text: string): string[] {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, " ").trim().split(/\s+/).filter((t) => t !== "");
}

/** Length of the longest common subsequence of two token lists (dynamic programming, two rows). */
export function lcsLength(a: string[], b: string[]): number {
  let prev = new Array<number>(b.length + 1).fill(0);
  let cur = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      cur[j] = a[i - 1] === b[j - 1] ? prev[j - 1] + 1 : Math.max(prev[j], cur[j - 1]);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length];
}

export interface RougeL {
  precision: number;
  recall: number;
  /** harmonic mean of precision and recall, 0..1 (0 when either text has no words) */
  f1: number;
}

/** ROUGE-L of `response` against `reference`. */
export function rougeL(response: string, reference: string): RougeL {
  const r = rougeTokens(response);
  const ref = rougeTokens(reference);
  if (r.length === 0 || ref.length === 0) return { precision: 0, recall: 0, f1: 0 };
  const lcs = lcsLength(r, ref);
  const precision = lcs / r.length;
  const recall = lcs / ref.length;
  return { precision, recall, f1: lcs === 0 ? 0 : (2 * precision * recall) / (precision + recall) };
}
