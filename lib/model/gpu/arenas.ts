/**
 * A set of arenas in the GPU layout (layout.ts): the parameters, or their gradients, or one of AdamW's
 * moments, and the copies between them and TF.js tensors of the library.
 *
 * Both directions stay on the GPU: a TF.js tensor's buffer (`dataToGPU`) is copied into the arena, and an
 * arena's range into a buffer TF.js adopts (`tf.tensor({ buffer })`). Query, key and value are joined and
 * split with tf.concat / tf.split, the head's blocks transposed by the runtime's own kernel, on the GPU too.
 */
import * as tf from "@tensorflow/tfjs";
import { flushWebGPUBackend } from "../../engine/webgpu";
import { GpuRuntime } from "../../engine/webgpu/runtime";
import type { At, Buf } from "../../engine/webgpu/runtime";
import { record } from "../../engine/webgpu/recorder";
import { transposeRows } from "../../engine/webgpu/kernels/rows";
import { GpuLayout, GpuTensorSpec, Source, spec } from "./layout";

/** Bytes copied per submission while uploading: bounds the temporary copies TF.js holds at once. */
const UPLOAD_BATCH_BYTES = 256 * 2 ** 20;

const sizeOf = (s: GpuTensorSpec) => s.shape.reduce((a, b) => a * b, 1);

export class Arenas {
  readonly bufs: Buf[];

  constructor(private readonly rt: GpuRuntime, readonly layout: GpuLayout, label: string) {
    this.bufs = layout.arenaSizes.map((n, i) => rt.buffer(n * 4, `${label} arena ${i}`));
  }

  /** Where a GPU tensor starts. */
  at(name: string): At {
    const s = spec(this.layout, name);
    return { buf: this.bufs[s.arena], offset: s.offset };
  }

  /** Elements in use in arena i (AdamW updates these). */
  used(i: number): number {
    return this.layout.arenaSizes[i];
  }

  /** Fill every GPU tensor from TF.js tensors of the library, by name (`get` may make them; they are disposed unless `keep` says so). */
  async upload(get: (name: string) => tf.Tensor, keep: (t: tf.Tensor) => boolean): Promise<void> {
    let rec = record(this.rt);
    let refs: tf.Tensor[] = [];
    let bytes = 0;
    const borrowed: Buf[] = [];
    for (const s of this.layout.tensors.values()) {
      const t = tf.tidy(() => fromSource(s.source, get));
      onGpu(t);
      const { buffer, tensorRef } = t.dataToGPU(); // a copy TF.js owns, its queue submitted
      if (!keep(t)) t.dispose();
      refs.push(tensorRef);
      if (s.source.kind === "transpose") {
        // a head block (C, n) -> (n, C) with the runtime's kernel (TF.js's transpose cannot dispatch the largest)
        const [n, C] = s.shape;
        const src = this.rt.external(buffer as GPUBuffer, "TF.js tensor");
        borrowed.push(src);
        transposeRows(this.rt, rec, C, n, { buf: src, offset: 0 }, { buf: this.bufs[s.arena], offset: s.offset });
      } else rec.copy(buffer as GPUBuffer, 0, this.bufs[s.arena].buffer, s.offset * 4, sizeOf(s) * 4);
      bytes += sizeOf(s) * 4;
      if (bytes >= UPLOAD_BATCH_BYTES) {
        await rec.submit();
        tf.dispose(refs); // their buffers go back to TF.js's pool: a later use comes after these copies
        borrowed.splice(0).forEach((b) => this.rt.forget(b));
        [rec, refs, bytes] = [record(this.rt), [], 0];
      }
    }
    await rec.submit();
    tf.dispose(refs);
    borrowed.forEach((b) => this.rt.forget(b));
  }

  /** Hand every GPU tensor back to TF.js: `set(name, value)` for each library tensor (value is disposed after). */
  async download(set: (name: string, value: tf.Tensor) => void): Promise<void> {
    const rec = record(this.rt);
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const staged: Array<{ s: GpuTensorSpec; buffer: GPUBuffer }> = [];
    const borrowed: Buf[] = [];
    for (const s of this.layout.tensors.values()) {
      const buffer = this.rt.device.createBuffer({ size: sizeOf(s) * 4, usage });
      if (s.source.kind === "transpose") {
        const [n, C] = s.shape; // (n, C) -> the head block's (C, n)
        const dst = this.rt.external(buffer, "staging");
        borrowed.push(dst);
        transposeRows(this.rt, rec, n, C, { buf: this.bufs[s.arena], offset: s.offset }, { buf: dst, offset: 0 });
      } else rec.copy(this.bufs[s.arena].buffer, s.offset * 4, buffer, 0, sizeOf(s) * 4);
      staged.push({ s, buffer });
    }
    await rec.submit();
    borrowed.forEach((b) => this.rt.forget(b));
    for (const { s, buffer } of staged) {
      tf.tidy(() => {
        const shape = s.source.kind === "transpose" ? [s.shape[1], s.shape[0]] : s.shape;
        const t = tf.tensor({ buffer }, shape, "float32"); // TF.js copies it into a buffer of its own
        toSource(s.source, t, set);
      });
    }
    flushWebGPUBackend(); // TF.js's copies are submitted: the staging buffers can go
    for (const { buffer } of staged) buffer.destroy();
  }

  dispose(): void {
    for (const b of this.bufs) this.rt.destroy(b);
  }
}

/** TF.js uploads a new tensor's values at its first use; `dataToGPU` wants them on the GPU already. */
function onGpu(t: tf.Tensor): void {
  const backend = tf.backend() as unknown as { uploadToGPU?: (dataId: object) => void };
  backend.uploadToGPU?.(t.dataId);
}

/** The GPU tensor's value from library tensors. */
function fromSource(src: Source, get: (name: string) => tf.Tensor): tf.Tensor {
  if (src.kind === "concat") return tf.concat(src.names.map(get), -1); // (C, C) x 3 -> (C, 3C); (C) x 3 -> (3C)
  return get(src.name); // as it is; a "transpose" source is transposed on its way in (upload)
}

/** The library tensors from the GPU tensor's value. */
function toSource(src: Source, t: tf.Tensor, set: (name: string, value: tf.Tensor) => void): void {
  if (src.kind === "concat") tf.split(t, 3, -1).forEach((part, k) => set(src.names[k], part)); // (C, 3C) -> (C, C) x 3
  else set(src.name, t); // a "transpose" source was transposed on its way out (download)
}
