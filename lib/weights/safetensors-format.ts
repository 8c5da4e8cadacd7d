/**
 * The safetensors format, which this folder reads and writes by hand (no Python, no native addon).
 *
 *   bytes 0..7      N, the header length, unsigned 64-bit little-endian
 *   bytes 8..8+N    a JSON header: { "<name>": { "dtype": "F32", "shape": [768, 2304],
 *                   "data_offsets": [begin, end] }, ..., "__metadata__": { "<k>": "<v>" } }
 *   bytes 8+N..     the raw little-endian tensor data; offsets count from here
 *
 * Unlike a PyTorch pickle, nothing in the file is ever executed: the header is JSON and the
 * rest is numbers. The reader is `safetensors-read.ts`, the writer `safetensors-write.ts`.
 */

/** Bytes per element of every dtype the format defines (others are rejected as unknown). */
export const DTYPE_BYTES: Readonly<Record<string, number>> = {
  BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  I64: 8, U64: 8, F64: 8,
};

/** A dtype the format defines: an own key of DTYPE_BYTES ("toString" is not one). */
export function isKnownDtype(dtype: string): boolean {
  return Object.hasOwn(DTYPE_BYTES, dtype);
}

/** The dtypes the reader converts to float32; GPT-2 checkpoints are F32, sometimes F16 or BF16. */
export const FLOAT_DTYPES = ["F32", "F16", "BF16", "F64"] as const;

/** The official format caps the header at 100 MB; a larger length means a damaged file. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** One tensor's entry in the header. `begin`/`end` are absolute positions in the file. */
export interface TensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

/** `[2, 3]` -> `[2, 3]` as text, for messages. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/** A tensor name in double quotes, for messages; a name from a file may hold a newline, which stays escaped. */
export const quoted = (name: string): string => JSON.stringify(name);

/** Number of elements of a shape (1 for a scalar `[]`). */
export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Reverses each `width`-byte group: little-endian file data on a big-endian machine. */
export function swapBytes(bytes: Uint8Array, width: number): void {
  for (let i = 0; i < bytes.length; i += width) bytes.subarray(i, i + width).reverse();
}
