/**
 * Kernels the wasm backend lacks, or gets wrong, for training; registered under backend "wasm".
 *
 * The only one a GPT training step needs is `UnsortedSegmentSum`: tfjs computes the
 * gradient of `tf.gather` (the token and position embeddings) with it. Without it,
 * `tf.variableGrads` fails on wasm with "Kernel 'UnsortedSegmentSum' not registered".
 * (Found by running a forward+backward of embedding → layer norm → attention → matmul →
 * logSoftmax on wasm; it is also the only training kernel in the cpu backend's list
 * that wasm does not have.)
 *
 * It is written in JavaScript over the wasm heap: one pass over the rows, adding each
 * into its segment's output row. For the embedding gradient that is B·T rows of C floats,
 * a few milliseconds; wasm's own `ScatterNd` would do the same work but cannot drop
 * out-of-range ids, which `UnsortedSegmentSum` must (TensorFlow's semantics).
 */
import * as tf from "@tensorflow/tfjs";
import { KernelArgs, KernelImpl, KernelPatch, addKernel, patchKernel } from "./patch-kernel";
import type { WasmBackendLike } from "./wasm-guard";
import { addRowsIntoSegments } from "./segment-sum";

/**
 * out[s, ...] = Σ x[i, ...] over the i with segmentIds[i] == s, for s in [0, numSegments).
 * segmentIds has the shape of x's leading dims; ids outside [0, numSegments) are dropped.
 */
function unsortedSegmentSum(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { x, segmentIds } = args.inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const numSegments = (args.attrs as { numSegments: number }).numSegments;
  if (x.dtype !== "float32" && x.dtype !== "int32") {
    throw new Error(`UnsortedSegmentSum (wasm): dtype ${x.dtype} not supported`);
  }
  // (N, ...inner) where N = size of segmentIds: the ids index x's leading dims.
  const numRows = tf.util.sizeFromShape(segmentIds.shape);
  const innerShape = x.shape.slice(segmentIds.shape.length);
  const inner = tf.util.sizeFromShape(innerShape);
  const out = backend.makeOutput([numSegments, ...innerShape], x.dtype);
  // Views onto the wasm heap, taken after makeOutput: allocating may grow (and move) the heap.
  const xs = backend.typedArrayFromHeap(x);
  const ids = backend.typedArrayFromHeap(segmentIds);
  const o = backend.typedArrayFromHeap(out);
  o.fill(0); // the heap is not zeroed
  addRowsIntoSegments(o, xs, ids, numRows, inner, numSegments);
  return out;
}

/**
 * `tf.gather(x, indices, axis, batchDims)` with batchDims > 0, which wasm's C++ Gather gets
 * wrong: `gather([[1,2,3],[4,5,6]], [2,0], 1, 1)` gives [3, 0] on wasm instead of [3, 4]
 * (tfjs 4.22), and larger inputs read out of bounds. A loss that picks each row's target
 * logit this way would silently train on garbage. We do batchDims > 0 here, in JavaScript
 * (the output is usually small: one value per row), and leave batchDims = 0 to the original.
 *
 * out[b, o, j, s] = x[b, o, indices[b, j], s], with x seen as (batch, outer, dim, slice).
 */
function gatherBatched(x: tf.TensorInfo, indices: tf.TensorInfo, axis: number, batchDims: number, backend: WasmBackendLike): tf.TensorInfo {
  const info = tf.backend_util.segment_util.collectGatherOpShapeInfo(x, indices, axis, batchDims);
  const { batchSize, outerSize, dimSize, sliceSize } = info;
  const perBatch = tf.util.sizeFromShape(indices.shape) / batchSize; // indices seen as (batch, perBatch)
  const out = backend.makeOutput(info.outputShape, x.dtype);
  const xs = backend.typedArrayFromHeap(x);
  const ids = backend.typedArrayFromHeap(indices);
  const o = backend.typedArrayFromHeap(out);
  let k = 0;
  for (let b = 0; b < batchSize; b++) {
    for (let q = 0; q < outerSize; q++) {
      for (let j = 0; j < perBatch; j++) {
        const id = ids[b * perBatch + j];
        if (id < 0 || id >= dimSize) throw new Error(`GatherV2: the index value ${id} is not in [0, ${dimSize - 1}]`);
        const src = ((b * outerSize + q) * dimSize + id) * sliceSize;
        for (let s = 0; s < sliceSize; s++) o[k++] = xs[src + s];
      }
    }
  }
  return out;
}

function gatherV2(original: KernelImpl, args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
  const { axis, batchDims } = args.attrs as { axis: number; batchDims: number };
  if (!batchDims) return original(args);
  const parsedAxis = tf.util.parseAxisParam(axis, x.shape)[0];
  const rankI = indices.shape.length;
  return gatherBatched(x, indices, parsedAxis, batchDims < 0 ? batchDims + rankI : batchDims, args.backend as WasmBackendLike);
}

// Unlike the speed patches these stay on whatever the tfjs version (wasm-guard.ts checks only
// that the BackendWasm methods they call exist): without UnsortedSegmentSum no gradient of an
// embedding can be taken on wasm, and without the gather fix a batchDims gather silently gives
// wrong numbers. They rest on nothing but tfjs's public kernel registry, its backend_util, and
// `makeOutput`/`typedArrayFromHeap`, which BackendWasm declares and all its own kernels call,
// and each is correct by itself whatever wasm's own kernels do.
const segmentSum = new KernelPatch(() => addKernel("UnsortedSegmentSum", "wasm", unsortedSegmentSum));
const batchedGather = new KernelPatch(() => patchKernel("GatherV2", "wasm", (original) => (args) => gatherV2(original, args)));

/** Register the missing kernels and fix the wrong ones (once); returns their names. */
export function registerMissingWasmKernels(): string[] {
  const added: string[] = [];
  if (segmentSum.install()) added.push("UnsortedSegmentSum");
  if (batchedGather.install()) added.push("GatherV2 (batchDims)");
  return added;
}
