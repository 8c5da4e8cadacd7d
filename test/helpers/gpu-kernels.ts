// Helpers for the tests of the course's own WebGPU kernels (lib/engine/webgpu/kernels/): start the webgpu
// engine (skip where there is none; under CI=true fail), put host arrays into the runtime's buffers, read
// them back, and random data of awkward shapes.
import { test } from "node:test";
import { initEngine } from "../../lib/engine";
import { Buf, GpuRuntime, gpuRuntime } from "../../lib/engine/webgpu/runtime";

let started: Promise<string | undefined> | null = null;

/** Start the webgpu engine once; the reason it cannot, or undefined. */
export function startWebGPU(): Promise<string | undefined> {
  started ??= initEngine({ backend: "webgpu", log: () => {} }).then(
    () => undefined,
    (err: Error) => {
      const why = `no WebGPU engine here: ${err.message}`;
      if (process.env.CI === "true") throw new Error(`CI=true: ${why}`);
      return why;
    },
  );
  return started;
}

/** A test that needs the WebGPU engine: skipped (with the reason) where there is none, outside CI. */
export function gpuTest(name: string, fn: (rt: GpuRuntime) => Promise<void>): void {
  test(name, async (t) => {
    const skip = await startWebGPU();
    if (skip !== undefined) return t.skip(skip);
    const rt = gpuRuntime();
    rt.validate = true;
    const errors = rt.errors.length;
    await fn(rt);
    if (rt.errors.length > errors) throw new Error(`the device reported: ${rt.errors.slice(errors).join("; ")}`);
  });
}

/** A buffer holding `data` (freed by the caller with rt.destroy). */
export function upload(rt: GpuRuntime, data: Float32Array | Int32Array | Uint32Array, label = "test"): Buf {
  const buf = rt.buffer(data.byteLength, label);
  rt.write(buf, 0, data);
  return buf;
}

/** Seeded uniform values in [lo, hi). */
export function randomArray(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = lo + ((s >>> 0) / 2 ** 32) * (hi - lo);
  }
  return out;
}

/** Largest |a - b| / max(1, |b|) over the arrays (relative past 1, absolute below). */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i]));
    if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d;
  }
  return worst;
}
