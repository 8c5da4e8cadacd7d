/**
 * A batch's small integer data for the GPU step, made on the host and sent in one write: token ids and
 * positions, the kept positions (targets that are not -100) and their targets, the map that puts the head's
 * gradient back in place, each row's last position (generation), each row's left padding, and, for the
 * token embedding's gradient, the distinct tokens of each vocabulary block with the rows that hold them.
 * Every section is a run of u32 (i32 where -1 means "none") at a word offset of one buffer.
 */
import { DataError } from "../../core/errors";

export interface Meta {
  words: Uint32Array;
  ids: number;
  pos: number;
  pads: number;
  targets: number;
  kept: number;
  scatter: number;
  last: number;
  rows: number;
  /** per vocabulary block: where its (token, first, end) triplets start, and how many tokens */
  tokens: Array<{ list: number; count: number }>;
}

export interface MetaInput {
  /** token ids, (B, T) row-major */
  ids: ArrayLike<number>;
  B: number;
  T: number;
  vocabSize: number;
  /** positions before the first column (the key/value cache's length) */
  past?: number;
  /** left padding per row (generation): column j of row b sits at position max(0, past + j - pads[b]) */
  pads?: number[];
  /** the kept positions (flat indices) and their target ids (training and evaluation) */
  kept?: { rows: ArrayLike<number>; ids: ArrayLike<number> };
  /** the vocabulary blocks, for the token embedding's gradient (training) */
  blocks?: Array<[number, number]>;
}

/** Lay out a batch's metadata (see the file comment); a token id outside the vocabulary is a DataError. */
export function batchMeta(m: MetaInput): Meta {
  const { B, T } = m;
  const N = B * T;
  const past = m.past ?? 0;
  const pads = m.pads ?? new Array<number>(B).fill(0);
  const keptRows = m.kept?.rows ?? [];
  const parts: number[][] = [];
  const at: number[] = [];
  let size = 0;
  const add = (values: number[]) => {
    at.push(size);
    parts.push(values);
    size += values.length;
  };
  const ids = Array.from(m.ids);
  ids.forEach((id, n) => {
    if (!Number.isInteger(id) || id < 0 || id >= m.vocabSize) {
      throw new DataError(`token id ${id} at row ${Math.floor(n / T)}, column ${n % T} is outside the vocabulary [0, ${m.vocabSize})`);
    }
  });
  add(ids);
  add(ids.map((_, n) => Math.max(0, past + (n % T) - pads[Math.floor(n / T)])));
  add(pads);
  add(Array.from(m.kept?.ids ?? []));
  add(Array.from(keptRows));
  const scatter = new Array<number>(N).fill(-1);
  Array.from(keptRows).forEach((r, k) => (scatter[r] = k));
  add(scatter);
  add(Array.from({ length: B }, (_, b) => b * T + T - 1));
  // distinct tokens per block, each with the rows that hold it, in token order
  const byToken = new Map<number, number[]>();
  if (m.blocks) ids.forEach((id, n) => (byToken.get(id) ?? byToken.set(id, []).get(id)!).push(n));
  const sorted = [...byToken.keys()].sort((a, b) => a - b);
  const rowList: number[] = [];
  const triplets: number[] = [];
  for (const tok of sorted) {
    const first = rowList.length;
    rowList.push(...(byToken.get(tok) as number[]));
    triplets.push(tok, first, rowList.length);
  }
  add(rowList);
  add(triplets);
  const tripletsAt = at[at.length - 1];
  const tokens = (m.blocks ?? []).map(([start, count]) => {
    const first = sorted.findIndex((t) => t >= start);
    const n = first < 0 ? 0 : sorted.slice(first).filter((t) => t < start + count).length;
    return { list: tripletsAt + 3 * Math.max(first, 0), count: n };
  });
  const words = new Uint32Array(Math.max(size, 4));
  parts.forEach((p, i) => words.set(p.map((x) => x >>> 0), at[i])); // -1 as 0xffffffff: an i32 -1 to the kernels
  const [idsAt, posAt, padsAt, targetsAt, keptAt, scatterAt, lastAt, rowsAt] = at;
  return { words, ids: idsAt, pos: posAt, pads: padsAt, targets: targetsAt, kept: keptAt, scatter: scatterAt, last: lastAt, rows: rowsAt, tokens };
}
