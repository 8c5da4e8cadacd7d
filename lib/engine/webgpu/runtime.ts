/**
 * The course's own WebGPU runtime: buffers, compute pipelines and the recording of dispatches, on the
 * same GPUDevice as TensorFlow.js's WebGPU backend (lib/engine/webgpu/index.ts), for the fused kernels of
 * lib/engine/webgpu/kernels/ and the GPT-2 step built from them (lib/model/gpu/).
 *
 * Why not through TF.js: a TF.js op on Dawn costs ~400 µs of overhead (its uniforms, bind group and
 * pipeline lookup are made per call), a raw Dawn dispatch 9–14 µs when its pipeline and bind group are
 * made once. So here:
 *  - a pipeline is made once per kernel variant (cached by the kernel's key);
 *  - a bind group is made once per (kernel, buffers) and reused: kernels bind whole buffers and get the
 *    element offsets of their operands as uniforms, so a step's bind groups repeat from step to step;
 *  - every dispatch's uniforms go into one slot (256 bytes) of a page of uniform memory, bound with a
 *    dynamic offset, and each page is written with one `writeBuffer` when the recording is submitted;
 *  - a whole step is one command encoder, its dispatches in as few compute passes as its copies allow.
 *
 * WebGPU forbids binding one buffer twice in a dispatch when one of the bindings is writable, so a kernel
 * never reads and writes two different operands of the same buffer; parameters live in arenas (one buffer
 * holds many tensors), activations each in a buffer of their own.
 */
import { ConfigError } from "../../core/errors";
import { webgpuDevice } from "./index";
import type { GpuProfiler } from "./profiler";

/** One GPU buffer made by the runtime, with an id for the bind-group cache. */
export interface Buf {
  readonly id: number;
  readonly buffer: GPUBuffer;
  /** size in bytes */
  readonly bytes: number;
  readonly label: string;
}

/** An operand: a buffer and the element offset (f32 or u32 words) where it starts. */
export interface At {
  buf: Buf;
  offset: number;
}

/** How a kernel uses each storage binding (binding 1, 2, … in order; binding 0 is its uniforms). */
export type Access = "read" | "write";

export interface KernelSpec {
  /** unique per WGSL variant: the pipeline cache's key */
  key: string;
  /** WGSL source; `@binding(0)` is `var<uniform> P: Params`, bindings 1.. are the storage buffers */
  code: string;
  /** access of bindings 1..n */
  bindings: Access[];
}

export interface Kernel {
  readonly spec: KernelSpec;
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
}

/** Bytes of uniforms per dispatch (WebGPU's largest minUniformBufferOffsetAlignment). */
export const UNIFORM_SLOT_BYTES = 256;
/** 32-bit words per dispatch's uniforms. */
export const UNIFORM_WORDS = UNIFORM_SLOT_BYTES / 4;
/** Dispatch slots per page of uniform memory. */
export const SLOTS_PER_PAGE = 256;
/** A read sleeps on a timer first only when it expects to wait longer than this (ms): a timer is coarse. */
const SLEEP_FROM_MS = 4;
/** Largest workgroup count per grid dimension that every WebGPU device accepts. */
export const MAX_WORKGROUPS = 65535;

const STORAGE_USAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** A float's bits as a u32, for uniforms (every uniform word is written as a u32). */
const bits = new DataView(new ArrayBuffer(4));
export function f32bits(x: number): number {
  bits.setFloat32(0, x, true);
  return bits.getUint32(0, true);
}

export class GpuRuntime {
  readonly device: GPUDevice;
  /** bytes: the largest storage binding (and so the largest tensor or arena) this device takes */
  readonly maxBindingBytes: number;
  /** bytes held by live buffers made here (leak tests compare it before and after) */
  bytesAllocated = 0;
  /** compute dispatches recorded since the runtime was made (the bench reads the difference per step) */
  dispatches = 0;
  /** device-side copies and clears recorded (not dispatches, counted apart) */
  transfers = 0;
  /** while set, every dispatch is timed on the GPU (profiler.ts) */
  profiler: GpuProfiler | null = null;
  /** check each submit for validation errors and throw them (tests; slower: it waits on the device) */
  validate = process.env.COURSE_WEBGPU_VALIDATE === "1";
  private nextId = 1;
  private readonly kernels = new Map<string, Kernel>();
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly pages: GPUBuffer[] = [];
  private staging: GPUBuffer | null = null;
  private scratchBuf: Buf | null = null;
  /** when the last batch of work was submitted (performance.now()), and how long reads of each kind waited for theirs */
  submittedAt = 0;
  private readonly waits = new Map<string, number>();

  /** validation and out-of-memory errors the device reported outside an error scope, oldest first */
  readonly errors: string[] = [];

  constructor(device: GPUDevice) {
    this.device = device;
    this.maxBindingBytes = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
    device.addEventListener("uncapturederror", (e) => this.errors.push((e as GPUUncapturedErrorEvent).error.message));
  }

  /** A zeroed storage buffer of `bytes` (rounded up to 16), past the binding limit a ConfigError naming `label`. */
  buffer(bytes: number, label: string): Buf {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    if (size > this.maxBindingBytes) {
      throw new ConfigError(
        `webgpu: ${label} needs ${(size / 2 ** 20).toFixed(1)} MiB in one buffer, past the ${(this.maxBindingBytes / 2 ** 20).toFixed(1)} MiB this device binds`,
      );
    }
    const buffer = this.device.createBuffer({ size, usage: STORAGE_USAGE(), label });
    this.bytesAllocated += size;
    return { id: this.nextId++, buffer, bytes: size, label };
  }

  /**
   * Run `make` (which makes buffers) and throw a ConfigError, naming `what` and the bytes asked for, when the
   * device ran out of memory: WebGPU otherwise hands back an unusable buffer and reports the error only to a
   * listener, and the kernels would compute on nothing.
   */
  async allocating<T>(what: string, make: () => T): Promise<T> {
    const before = this.bytesAllocated;
    this.device.pushErrorScope("out-of-memory");
    let made: T;
    try {
      made = make();
    } finally {
      const error = await this.device.popErrorScope();
      if (error !== null) {
        const mib = ((this.bytesAllocated - before) / 2 ** 20).toFixed(0);
        throw new ConfigError(`webgpu: the GPU has no room for ${what} (${mib} MiB more; ${(before / 2 ** 20).toFixed(0)} MiB held already): use a smaller model or batch`);
      }
    }
    return made;
  }

  /** Throw the first error the device reported since `since` (an index into `errors`), if any. */
  throwIfErrors(since: number, what: string): void {
    if (this.errors.length > since) throw new Error(`webgpu: ${what}: ${this.errors[since].split("\n")[0]}`);
  }

  /** Free a buffer made by `buffer` and forget its bind groups. */
  destroy(buf: Buf): void {
    this.forget(buf);
    buf.buffer.destroy();
    this.bytesAllocated -= buf.bytes;
  }

  /** A buffer someone else owns (TF.js's), to bind for a while; `forget` it after. Not counted in bytesAllocated. */
  external(buffer: GPUBuffer, label: string): Buf {
    return { id: this.nextId++, buffer, bytes: buffer.size, label };
  }

  /** Drop the bind groups of a buffer (an external one when done with it). */
  forget(buf: Buf): void {
    const tag = `#${buf.id}#`;
    for (const key of [...this.bindGroups.keys()]) if (key.includes(tag)) this.bindGroups.delete(key);
  }

  /** The compiled kernel for a spec (compiled on first use, then cached by its key). */
  kernel(spec: KernelSpec): Kernel {
    const known = this.kernels.get(spec.key);
    if (known !== undefined) return known;
    const entries: GPUBindGroupLayoutEntry[] = [
      { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: "uniform", hasDynamicOffset: true, minBindingSize: UNIFORM_SLOT_BYTES } },
      ...spec.bindings.map((access, i): GPUBindGroupLayoutEntry => ({
        binding: i + 1,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: access === "read" ? "read-only-storage" : "storage" },
      })),
    ];
    const layout = this.device.createBindGroupLayout({ entries, label: spec.key });
    const module = this.device.createShaderModule({ code: spec.code, label: spec.key });
    const pipeline = this.device.createComputePipeline({
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: "main" },
      label: spec.key,
    });
    const kernel = { spec, pipeline, layout };
    this.kernels.set(spec.key, kernel);
    return kernel;
  }

  /** The bind group of a kernel on these buffers and uniform page, made once. */
  bindGroup(kernel: Kernel, bufs: readonly Buf[], page: number): GPUBindGroup {
    let key = `${kernel.spec.key}|${page}`;
    for (const b of bufs) key += `#${b.id}#`;
    let group = this.bindGroups.get(key);
    if (group === undefined) {
      if (bufs.length !== kernel.spec.bindings.length) {
        throw new Error(`webgpu kernel ${kernel.spec.key}: ${bufs.length} buffers for ${kernel.spec.bindings.length} bindings`);
      }
      group = this.device.createBindGroup({
        layout: kernel.layout,
        entries: [
          { binding: 0, resource: { buffer: this.page(page), offset: 0, size: UNIFORM_SLOT_BYTES } },
          ...bufs.map((b, i) => ({ binding: i + 1, resource: { buffer: b.buffer } })),
        ],
      });
      this.bindGroups.set(key, group);
    }
    return group;
  }

  /** Uniform page `i` (made on first use). */
  page(i: number): GPUBuffer {
    while (this.pages.length <= i) {
      this.pages.push(this.device.createBuffer({ size: SLOTS_PER_PAGE * UNIFORM_SLOT_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST }));
    }
    return this.pages[i];
  }

  /**
   * A scratch buffer of at least `bytes`, shared by every kernel that needs one for the length of a dispatch
   * pair (split-K's partial sums): dispatches run in order, so one user's data is consumed before the next
   * one writes. Grown (never shrunk) as asked.
   */
  scratch(bytes: number): Buf {
    if (this.scratchBuf === null || this.scratchBuf.bytes < bytes) {
      if (this.scratchBuf !== null) this.destroy(this.scratchBuf);
      this.scratchBuf = this.buffer(Math.min(Math.max(bytes, this.scratchBuf?.bytes ?? 0) * 1.25, this.maxBindingBytes), "scratch");
    }
    return this.scratchBuf;
  }

  /** Write host data into a buffer at a byte offset (queued: runs before later submits). */
  write(buf: Buf, offsetBytes: number, data: ArrayBufferView): void {
    this.device.queue.writeBuffer(buf.buffer, offsetBytes, data.buffer, data.byteOffset, data.byteLength);
  }

  /**
   * Read `bytes` of a buffer from `offsetBytes`, after all work submitted so far. `kind` names the kind of work
   * waited for ("step", "token"…): Dawn's Node binding waits for the GPU by polling (a setImmediate loop that
   * keeps a core busy and feeds the garbage collector), so a read first sleeps on a timer through most of the
   * time the last read of its kind waited, when that was long (a training step, not a generated token), and
   * polls only for the rest. On a software GPU (lavapipe) that frees the cores that run the kernels.
   */
  async read(buf: Buf, offsetBytes: number, bytes: number, kind = "read"): Promise<ArrayBuffer> {
    const expected = this.waits.get(kind) ?? 0;
    const sleep = 0.8 * expected - (performance.now() - this.submittedAt);
    if (sleep > SLEEP_FROM_MS) await new Promise((resolve) => setTimeout(resolve, sleep));
    const size = Math.ceil(bytes / 4) * 4;
    if (this.staging === null || this.staging.size < size) {
      this.staging?.destroy();
      this.staging = this.device.createBuffer({ size: Math.max(size, 1 << 16), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    }
    const staging = this.staging;
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(buf.buffer, offsetBytes, staging, 0, size);
    this.device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ, 0, size);
    this.waits.set(kind, performance.now() - this.submittedAt);
    const out = staging.getMappedRange(0, size).slice(0, bytes);
    staging.unmap();
    return out;
  }

  async readF32(buf: Buf, offset: number, count: number, kind = "read"): Promise<Float32Array> {
    return new Float32Array(await this.read(buf, offset * 4, count * 4, kind));
  }

  /** Resolves once the device has finished everything submitted so far. */
  async idle(): Promise<void> {
    await this.device.queue.onSubmittedWorkDone();
  }

  /** Free every buffer this runtime holds for itself (uniform pages, staging); callers free theirs. */
  dispose(): void {
    if (this.scratchBuf !== null) this.destroy(this.scratchBuf);
    this.scratchBuf = null;
    for (const p of this.pages) p.destroy();
    this.pages.length = 0;
    this.staging?.destroy();
    this.staging = null;
    this.bindGroups.clear();
  }
}

let shared: GpuRuntime | null = null;

/** The runtime on the webgpu engine's device (one per device); a ConfigError before the engine runs on webgpu. */
export function gpuRuntime(): GpuRuntime {
  const device = webgpuDevice();
  if (device === null) throw new ConfigError("webgpu: the engine has not started on WebGPU (initEngine({ backend: \"webgpu\" }))");
  if (shared === null || shared.device !== device) shared = new GpuRuntime(device);
  return shared;
}
