/**
 * Blocks of vocabulary rows for a (V, C) float32 table too large for one GPU buffer.
 *
 * WebGPU binds at most `maxStorageBufferBindingSize` bytes of a buffer per kernel: 128 MiB by default
 * (Mesa's lavapipe, many integrated GPUs), while gpt2-small's token embedding is 147 MiB and gpt2-medium's
 * 196 MiB. Such a table is kept as consecutive blocks of whole rows, each within the limit; the token
 * embedding and the output head split at the same rows, so block j of both covers the same tokens.
 */

/** Rows per block are a multiple of this (any block but the last). */
const ROW_QUANTUM = 64;

/**
 * [start, count] of each block of a (V, C) float32 table under `maxBytes` per block; one block when the
 * whole table fits (or maxBytes is Infinity).
 */
export function vocabBlocks(vocabSize: number, embDim: number, maxBytes: number): Array<[number, number]> {
  if (vocabSize * embDim * 4 <= maxBytes) return [[0, vocabSize]];
  const rows = Math.floor(maxBytes / (embDim * 4) / ROW_QUANTUM) * ROW_QUANTUM;
  if (rows < ROW_QUANTUM) throw new Error(`vocabBlocks: a buffer of ${maxBytes} bytes holds fewer than ${ROW_QUANTUM} rows of ${embDim}`);
  // equal blocks (rounded to the quantum), so no block is a sliver
  const count = Math.ceil(vocabSize / rows);
  const per = Math.ceil(vocabSize / count / ROW_QUANTUM) * ROW_QUANTUM;
  const out: Array<[number, number]> = [];
  for (let start = 0; start < vocabSize; start += per) out.push([start, Math.min(per, vocabSize - start)]);
  return out;
}
