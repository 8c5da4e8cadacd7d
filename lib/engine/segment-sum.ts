/**
 * `UnsortedSegmentSum`'s arithmetic, shared by the engine's wasm and cpu kernels (wasm-kernels.ts,
 * cpu-kernels.ts): tfjs computes the gradient of `tf.gather` (the token and position embeddings) with it.
 *
 *   out[s, ...] = Σ x[i, ...] over the i with ids[i] == s, for s in [0, numSegments)
 *
 * One pass over the rows, adding each into its segment's row; ids outside [0, numSegments) are dropped
 * (TensorFlow's semantics). `out` must hold numSegments · inner zeros.
 */
export function addRowsIntoSegments(
  out: Float64Array | Float32Array | Int32Array | Uint8Array,
  x: Float32Array | Int32Array | Uint8Array,
  ids: ArrayLike<number>,
  numRows: number,
  inner: number,
  numSegments: number,
): void {
  for (let i = 0; i < numRows; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) out[dst + j] += x[src + j];
  }
}
