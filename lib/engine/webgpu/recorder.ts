/**
 * Recording a batch of GPU work on the course's runtime (runtime.ts): dispatches (each with its uniforms in
 * a 256-byte slot of a uniform page, bound with a dynamic offset), copies and clears, all in one command
 * encoder and as few compute passes as the copies allow, submitted together.
 */
import { GpuRuntime, Kernel, MAX_WORKGROUPS, SLOTS_PER_PAGE, UNIFORM_SLOT_BYTES, UNIFORM_WORDS } from "./runtime";
import type { Buf } from "./runtime";
import { PROFILE_CAPACITY } from "./profiler";

/** Start recording a batch of work on `rt`. Record and submit without awaiting in between: uniform pages are shared. */
export function record(rt: GpuRuntime): Recorder {
  return new Recorder(rt);
}

/** One batch of recorded work: dispatches, copies and clears, submitted together. */
export class Recorder {
  private readonly encoder: GPUCommandEncoder;
  private pass: GPUComputePassEncoder | null = null;
  private slots = 0;
  private words = new Uint32Array(SLOTS_PER_PAGE * UNIFORM_WORDS);
  /** while profiling: the label of each timed dispatch, in order */
  private readonly timed: string[] = [];

  constructor(private readonly rt: GpuRuntime) {
    this.encoder = rt.device.createCommandEncoder();
  }

  /**
   * One dispatch of `kernel` on `bufs` (bindings 1..n) with uniform words `params` (u32 each; floats
   * through f32bits) over `grid` workgroups. A dimension past MAX_WORKGROUPS is a bug in the caller.
   */
  dispatch(kernel: Kernel, bufs: readonly Buf[], params: ArrayLike<number>, grid: readonly number[], label = kernel.spec.key): void {
    const [x, y = 1, z = 1] = grid;
    if (x === 0 || y === 0 || z === 0) return;
    if (x > MAX_WORKGROUPS || y > MAX_WORKGROUPS || z > MAX_WORKGROUPS) {
      throw new Error(`webgpu kernel ${kernel.spec.key}: grid [${x}, ${y}, ${z}] is past ${MAX_WORKGROUPS} workgroups in a dimension`);
    }
    if (params.length > UNIFORM_WORDS) throw new Error(`webgpu kernel ${kernel.spec.key}: ${params.length} uniform words, at most ${UNIFORM_WORDS}`);
    const slot = this.slots++;
    if ((slot + 1) * UNIFORM_WORDS > this.words.length) {
      const grown = new Uint32Array(this.words.length * 2);
      grown.set(this.words);
      this.words = grown;
    }
    this.words.set(params, slot * UNIFORM_WORDS);
    const page = Math.floor(slot / SLOTS_PER_PAGE);
    const group = this.rt.bindGroup(kernel, bufs, page);
    const profiler = this.rt.profiler;
    if (profiler !== null && this.timed.length < PROFILE_CAPACITY) {
      // a pass of its own, with a timestamp at its start and end
      this.endPass();
      const i = this.timed.length;
      this.timed.push(label);
      this.pass = this.encoder.beginComputePass({ timestampWrites: { querySet: profiler.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
    }
    this.pass ??= this.encoder.beginComputePass();
    this.pass.setPipeline(kernel.pipeline);
    this.pass.setBindGroup(0, group, [(slot % SLOTS_PER_PAGE) * UNIFORM_SLOT_BYTES]);
    this.pass.dispatchWorkgroups(x, y, z);
    if (profiler !== null) this.endPass();
    this.rt.dispatches++;
  }

  /** Zero `bytes` of a buffer from `offsetBytes` (both multiples of 4). */
  clear(buf: Buf, offsetBytes = 0, bytes = buf.bytes): void {
    this.endPass();
    this.encoder.clearBuffer(buf.buffer, offsetBytes, bytes);
    this.rt.transfers++;
  }

  /** Copy bytes between buffers (offsets and size multiples of 4). */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.endPass();
    this.encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.rt.transfers++;
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  /** Write the uniforms and submit everything recorded. With `rt.validate`, await this to see errors. */
  async submit(): Promise<void> {
    this.endPass();
    const { device } = this.rt;
    for (let p = 0; p * SLOTS_PER_PAGE < this.slots; p++) {
      const used = Math.min(SLOTS_PER_PAGE, this.slots - p * SLOTS_PER_PAGE);
      const from = p * SLOTS_PER_PAGE * UNIFORM_WORDS;
      device.queue.writeBuffer(this.rt.page(p), 0, this.words.buffer, from * 4, used * UNIFORM_SLOT_BYTES);
    }
    const profiler = this.rt.profiler;
    if (profiler !== null && this.timed.length > 0) profiler.encodeResolve(this.encoder, this.timed.length);
    if (this.rt.validate) device.pushErrorScope("validation");
    device.queue.submit([this.encoder.finish()]);
    this.rt.submittedAt = performance.now();
    if (this.rt.validate) {
      const error = await device.popErrorScope();
      if (error !== null) throw new Error(`webgpu: ${error.message}`);
    }
    if (profiler !== null && this.timed.length > 0) await profiler.collect(this.timed);
  }
}

