/**
 * GPU time per kernel for the course's runtime, from WebGPU timestamp queries: while a profiler is on, every
 * dispatch runs in a compute pass of its own that writes a timestamp at its start and end, and a
 * submission waits for them and adds each dispatch's time to its kernel's row. (A pass per dispatch costs
 * a little: profile a step apart from the timed ones, as `bench --profile` does.) Needs the device feature
 * "timestamp-query"; without it `GpuProfiler.start` says so.
 */

/** What the profiler needs of the runtime (runtime.ts holds the profiler; named here so neither file imports the other). */
interface Profiled {
  device: GPUDevice;
  profiler: GpuProfiler | null;
}

/** Dispatches one submission can time (two queries each). */
export const PROFILE_CAPACITY = 2048; // WebGPU allows 4096 queries in a set

export interface KernelTime {
  calls: number;
  /** GPU time, nanoseconds */
  ns: number;
}

export class GpuProfiler {
  readonly querySet: GPUQuerySet;
  private readonly resolve: GPUBuffer;
  private readonly readback: GPUBuffer;
  readonly rows = new Map<string, KernelTime>();

  private constructor(private readonly rt: Profiled) {
    const d = rt.device;
    this.querySet = d.createQuerySet({ type: "timestamp", count: 2 * PROFILE_CAPACITY });
    this.resolve = d.createBuffer({ size: 16 * PROFILE_CAPACITY, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.readback = d.createBuffer({ size: 16 * PROFILE_CAPACITY, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  /** Start profiling the runtime's dispatches; an Error saying why when the device has no timestamp queries. */
  static start(rt: Profiled): GpuProfiler {
    if (!rt.device.features.has("timestamp-query")) throw new Error("webgpu: this device has no timestamp queries (feature \"timestamp-query\")");
    const p = new GpuProfiler(rt);
    rt.profiler = p;
    return p;
  }

  /** Record the resolve of `count` dispatches' timestamps into `encoder` (before it finishes). */
  encodeResolve(encoder: GPUCommandEncoder, count: number): void {
    encoder.resolveQuerySet(this.querySet, 0, 2 * count, this.resolve, 0);
    encoder.copyBufferToBuffer(this.resolve, 0, this.readback, 0, 16 * count);
  }

  /** After the submission: add each dispatch's time to its label's row. */
  async collect(labels: string[]): Promise<void> {
    await this.readback.mapAsync(GPUMapMode.READ, 0, 16 * labels.length);
    const t = new BigUint64Array(this.readback.getMappedRange(0, 16 * labels.length).slice(0));
    this.readback.unmap();
    labels.forEach((label, i) => {
      const row = this.rows.get(label) ?? { calls: 0, ns: 0 };
      row.calls += 1;
      row.ns += Math.max(0, Number(t[2 * i + 1] - t[2 * i]));
      this.rows.set(label, row);
    });
  }

  /** Stop profiling and free the query set; the rows stay. */
  stop(): void {
    if (this.rt.profiler === this) this.rt.profiler = null;
    this.querySet.destroy();
    this.resolve.destroy();
    this.readback.destroy();
  }
}
