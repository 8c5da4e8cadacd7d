/**
 * TF-IDF vectors over character n-grams and their cosine similarity: what the book's
 * `find-near-duplicates.py` (ch07/02) gets from scikit-learn's
 * `TfidfVectorizer(analyzer="char", ngram_range=(1, 3))` and `cosine_similarity`, written out
 * with scikit-learn's default weighting, so the numbers are scikit-learn's (to rounding):
 *
 *   - a text is lowercased, each run of two or more whitespace characters becomes one space,
 *     and every substring of 1 to 3 characters (Unicode code points, as Python counts) is a term;
 *   - tf(t, d) = how many times term t occurs in text d (raw counts);
 *   - idf(t) = ln((1 + n) / (1 + df(t))) + 1, with n texts of which df(t) contain t
 *     ("smooth_idf": as if one extra text held every term once, so no term gets a zero weight);
 *   - each text's vector tf * idf is scaled to length 1 (l2 norm), so the cosine similarity of
 *     two texts is the dot product of their vectors.
 *
 * Everything is float64, as scikit-learn's default dtype.
 */

/** One text's vector: the term ids it has, ascending, and their weights. */
export interface SparseVector {
  ids: Int32Array;
  values: Float64Array;
}

/**
 * Python's `\s` for text: the characters `str.isspace()` accepts. (JavaScript's `\s` differs:
 * it lacks U+001C-U+001F and U+0085 and adds U+FEFF.)
 */
export const PY_WHITESPACE = "\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const WHITESPACE_RUN = new RegExp(`[${PY_WHITESPACE}]{2,}`, "gu");

/** The n-grams of `text` for n in [minN, maxN], in scikit-learn's order: all 1-grams, then all 2-grams… */
export function charNgrams(text: string, minN = 1, maxN = 3): string[] {
  const chars = Array.from(text.toLowerCase().replace(WHITESPACE_RUN, " ")); // code points, as Python indexes strings
  const grams: string[] = [];
  for (let n = minN; n <= Math.min(maxN, chars.length); n++) {
    for (let i = 0; i + n <= chars.length; i++) grams.push(n === 1 ? chars[i] : chars.slice(i, i + n).join(""));
  }
  return grams;
}

/** The TF-IDF vectors of `texts` (see the file comment); a text without any term gets an empty vector. */
export function tfidfVectors(texts: string[], minN = 1, maxN = 3): SparseVector[] {
  const vocabulary = new Map<string, number>();
  const counts = texts.map((text) => {
    const tf = new Map<number, number>();
    for (const gram of charNgrams(text, minN, maxN)) {
      let id = vocabulary.get(gram);
      if (id === undefined) vocabulary.set(gram, (id = vocabulary.size));
      tf.set(id, (tf.get(id) ?? 0) + 1);
    }
    return tf;
  });
  const df = new Float64Array(vocabulary.size);
  for (const tf of counts) for (const id of tf.keys()) df[id] += 1;
  const n = texts.length;
  const idf = Float64Array.from(df, (d) => Math.log((1 + n) / (1 + d)) + 1);
  return counts.map((tf) => {
    const ids = Int32Array.from([...tf.keys()].sort((a, b) => a - b));
    const values = Float64Array.from(ids, (id) => (tf.get(id) as number) * idf[id]);
    let sumSq = 0;
    for (const v of values) sumSq += v * v;
    const norm = Math.sqrt(sumSq);
    if (norm > 0) for (let k = 0; k < values.length; k++) values[k] /= norm;
    return { ids, values };
  });
}

/** The dot product of two vectors: their cosine similarity, since both have length 1 (0 for an empty one). */
export function cosineSimilarity(a: SparseVector, b: SparseVector): number {
  let dot = 0;
  for (let i = 0, j = 0; i < a.ids.length && j < b.ids.length; ) {
    if (a.ids[i] === b.ids[j]) dot += a.values[i++] * b.values[j++];
    else if (a.ids[i] < b.ids[j]) i++;
    else j++;
  }
  return dot;
}

/**
 * Every pair (i, j), i < j, whose cosine similarity is above `threshold`, in the order of the
 * book's double loop. Row i is spread into a dense array once, so each pair costs only the
 * terms of text j.
 */
export function similarPairs(vectors: SparseVector[], threshold: number): { i: number; j: number; similarity: number }[] {
  const size = vectors.reduce((m, v) => Math.max(m, v.ids.length ? v.ids[v.ids.length - 1] + 1 : 0), 0);
  const dense = new Float64Array(size);
  const pairs: { i: number; j: number; similarity: number }[] = [];
  for (let i = 0; i < vectors.length; i++) {
    const a = vectors[i];
    for (let k = 0; k < a.ids.length; k++) dense[a.ids[k]] = a.values[k];
    for (let j = i + 1; j < vectors.length; j++) {
      const b = vectors[j];
      let dot = 0;
      for (let k = 0; k < b.ids.length; k++) dot += dense[b.ids[k]] * b.values[k];
      if (dot > threshold) pairs.push({ i, j, similarity: dot });
    }
    for (let k = 0; k < a.ids.length; k++) dense[a.ids[k]] = 0;
  }
  return pairs;
}
