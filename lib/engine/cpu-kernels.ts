/**
 * Patches for tfjs's plain JavaScript backend ("cpu", the last-resort engine), installed by `initEngine`
 * unless `patches` is false or `COURSE_CPU_PATCHES=0` (then the backend runs exactly as shipped).
 *
 * - `UnsortedSegmentSum`, the gradient of `tf.gather` (the token embedding's, every training step). The
 *   shipped kernel (tfjs-backend-cpu 4.22) loops over the *segments*: for each of the 50,257 vocabulary
 *   rows it builds a mask over the whole (B·T, C) gradient, casts it, multiplies and sums, and it frees
 *   those temporaries only once every row is done. On bench-tiny's (8, 68) batches that is ~627 KB a row,
 *   ~31 GB over the 50,257 rows, in ~10^10 elementwise steps: `bench --config bench-tiny --backend cpu`
 *   finished no step in 5 minutes while its memory climbed (3.3 GiB, 14 GiB after 13 minutes, issue 20) —
 *   not a leak, a kernel that holds every temporary it makes until it returns. Here it is one pass over the
 *   rows (segment-sum.ts): the same sums, in float64 rounded once as the shipped kernel's reduction does,
 *   so the same numbers. A step then takes ~45 s (bench-tiny, a busy 2-core machine), in ~620 MiB.
 *
 * Each wraps the kernel it replaced (patch-kernel.ts), which stays one switch away.
 */
import * as tf from "@tensorflow/tfjs";
import { KernelArgs, KernelImpl, KernelPatch, patchKernel } from "./patch-kernel";
import { addRowsIntoSegments } from "./segment-sum";

/** The parts of tfjs-backend-cpu's `MathBackendCPU` the kernels use. */
interface CpuBackendLike {
  data: { get(dataId: tf.DataId): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: tf.TypedArray): tf.TensorInfo;
}

function unsortedSegmentSum(original: KernelImpl, args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const backend = args.backend as CpuBackendLike;
  const { x, segmentIds } = args.inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const numSegments = (args.attrs as { numSegments: number }).numSegments;
  const xs = backend.data.get(x.dataId).values;
  const ids = backend.data.get(segmentIds.dataId).values;
  const typed = (v: unknown) => v instanceof Float32Array || v instanceof Int32Array;
  if ((x.dtype !== "float32" && x.dtype !== "int32") || !typed(xs) || !typed(ids)) return original(args);
  // x is (N, ...inner), N = the number of segment ids: the ids index x's leading dims
  const numRows = tf.util.sizeFromShape(segmentIds.shape);
  const innerShape = x.shape.slice(segmentIds.shape.length);
  const inner = tf.util.sizeFromShape(innerShape);
  // float32 sums run in float64 and are rounded once, as the shipped kernel's reduction does
  const sums = x.dtype === "float32" ? new Float64Array(numSegments * inner) : new Int32Array(numSegments * inner);
  addRowsIntoSegments(sums, xs as Float32Array | Int32Array, ids as Int32Array, numRows, inner, numSegments);
  return backend.makeTensorInfo([numSegments, ...innerShape], x.dtype, sums instanceof Float64Array ? Float32Array.from(sums) : sums);
}

const segmentSum = new KernelPatch(() => patchKernel("UnsortedSegmentSum", "cpu", (original) => (args) => unsortedSegmentSum(original, args)));

/** Install the cpu patches (`patches`), or take them out; returns a note for the engine line. */
export function installCpuPatches(patches: boolean): string[] {
  if (!patches || process.env.COURSE_CPU_PATCHES === "0") {
    segmentSum.remove();
    return ["unpatched"];
  }
  segmentSum.install();
  return ["patched"];
}

/** Whether the cpu backend's UnsortedSegmentSum is ours now. */
export function cpuPatchesInstalled(): boolean {
  return segmentSum.installed;
}
