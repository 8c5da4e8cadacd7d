/**
 * The WebGPU engine: TensorFlow.js's WebGPU backend (@tensorflow/tfjs-backend-webgpu) on Dawn, the
 * WebGPU implementation inside Chrome, through its Node.js bindings (the `webgpu` npm package,
 * prebuilt for Linux, macOS and Windows). One engine for the GPUs tfjs-node-gpu cannot reach:
 * Metal on macOS (Apple silicon), Vulkan on Linux (NVIDIA, AMD, Intel), D3D12 on Windows.
 *
 * Both packages are optional dependencies. The order matters: Dawn's classes (GPUBufferUsage…)
 * and `navigator.gpu` go onto globalThis before the backend is loaded, and the backend is loaded
 * into the same @tensorflow/tfjs instance the library uses (tfjs-core alone has no gradients).
 *
 * The engine asks Dawn for the adapter itself, instead of the backend's own factory, to
 *  - tell a hardware GPU from a software one (Mesa's llvmpipe/lavapipe, SwiftShader, Dawn's
 *    fallback adapter): `auto` takes a hardware GPU only; `webgpu` takes either and says which;
 *  - name the adapter and its API (Vulkan, Metal…) on the engine line;
 *  - keep the device's storage-buffer limit: a tensor past it gets Dawn validation messages and
 *    zeros, not an error, so every buffer the backend asks for is checked first (guardBuffers).
 *
 * `COURSE_WEBGPU_API=vulkan|metal|d3d12|d3d11|opengles` overrides the platform's API. opengles
 * (with a surfaceless EGL display) reaches Mesa releases whose lavapipe Dawn refuses (Debian 12's 22.3).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { ConfigError } from "../../core/errors";

/**
 * Integers up to 2^24 are exact in float32, and no further. The WebGPU backend reads index tensors
 * as float32, so a gather index past this picks a neighbour, silently: the library keeps below it.
 */
export const EXACT_FLOAT_INDEX = 2 ** 24;

/** The WebGPU APIs Dawn can run on, by the name of its `backend=` flag. */
const API_NAMES = { vulkan: "Vulkan", metal: "Metal", d3d12: "D3D12", d3d11: "D3D11", opengles: "OpenGL ES" } as const;
type WebGPUApi = keyof typeof API_NAMES;

// The adapter info fields read here (Dawn fills them; WebGPU leaves some empty).
interface AdapterInfo {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}

/** What the engine found: the adapter, its API, and whether it is a software rasteriser. */
export interface WebGPUAdapter {
  /** e.g. "NVIDIA GeForce RTX 4090" or "llvmpipe (LLVM 15.0.6, 256 bits)" */
  name: string;
  /** "Vulkan", "Metal", "D3D12", "D3D11" or "OpenGL ES" */
  api: string;
  software: boolean;
  /** bytes: the largest buffer one tensor may occupy on this device */
  maxBufferBytes: number;
}

/** An engine that is present but not taken, with the reason as it goes on the engine line. */
export class EngineSkipped extends Error {}

const SOFTWARE = /llvmpipe|lavapipe|softpipe|swiftshader|software|basic render|null-backend/i;

function apiFromEnv(): WebGPUApi {
  const v = process.env.COURSE_WEBGPU_API;
  if (v === undefined || v === "") {
    return process.platform === "darwin" ? "metal" : process.platform === "win32" ? "d3d12" : "vulkan";
  }
  if (!(v in API_NAMES)) {
    throw new ConfigError(`COURSE_WEBGPU_API: unknown API "${v}" (expected one of ${Object.keys(API_NAMES).join(", ")})`);
  }
  return v as WebGPUApi;
}

/** The adapter's name for people: its description, else its device name, else the vendor. */
function adapterName(info: AdapterInfo): string {
  const [description, device] = [info.description?.trim() ?? "", info.device?.trim() ?? ""];
  // OpenGL ES adapters describe the driver only ("OpenGL version OpenGL ES 3.2 Mesa …")
  if (device !== "" && description.startsWith("OpenGL")) return `${device} (${description})`;
  return description || device || info.vendor || "unnamed adapter";
}

/** True for a software rasteriser (or Dawn's fallback adapter): correct, but far slower than the CPU engines. */
export function isSoftwareAdapter(info: AdapterInfo): boolean {
  if (info.isFallbackAdapter === true) return true;
  return [info.vendor, info.architecture, info.device, info.description].some((s) => s !== undefined && SOFTWARE.test(s));
}

// The active device's details, once the engine has started on webgpu.
let active: WebGPUAdapter | null = null;

/** The WebGPU adapter the engine runs on, or null when the active backend is not webgpu. */
export function webgpuAdapter(): WebGPUAdapter | null {
  return active !== null && tf.getBackend() === "webgpu" ? active : null;
}

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/**
 * Refuse, in one line, a tensor of `shape` (float32) that would not fit one buffer on the active
 * WebGPU device; nothing on other engines. `what` names it, e.g. `model parameter "tokEmb.weight"`.
 */
export function checkFitsDevice(what: string, shape: readonly number[]): void {
  const gpu = webgpuAdapter();
  if (gpu === null) return;
  const bytes = 4 * shape.reduce((a, b) => a * b, 1);
  if (bytes > gpu.maxBufferBytes) {
    throw new ConfigError(
      `${what} [${shape.join(", ")}] is ${mb(bytes)}, past the ${mb(gpu.maxBufferBytes)} one WebGPU buffer may hold on ` +
        `${gpu.name} (${gpu.api}): use a smaller model, or another engine (COURSE_BACKEND=wasm|tensorflow)`,
    );
  }
}

/**
 * Make the backend's buffer manager refuse a storage buffer past the device's binding limit with
 * a ConfigError, instead of letting Dawn bind it and compute zeros.
 */
function guardBuffers(backend: tf.KernelBackend, limit: number, where: string): void {
  const manager = (backend as unknown as { bufferManager: { acquireBuffer: (size: number, usage: number, ...rest: unknown[]) => unknown } }).bufferManager;
  const acquire = manager.acquireBuffer.bind(manager);
  const STORAGE = (globalThis as unknown as { GPUBufferUsage: { STORAGE: number } }).GPUBufferUsage.STORAGE;
  manager.acquireBuffer = (size: number, usage: number, ...rest: unknown[]) => {
    if ((usage & STORAGE) !== 0 && size > limit) {
      throw new ConfigError(
        `webgpu: a tensor of ${mb(size)} is past the ${mb(limit)} one buffer may hold on ${where}: ` +
          `use a smaller model or batch, or another engine (COURSE_BACKEND=wasm|tensorflow)`,
      );
    }
    return acquire(size, usage, ...rest);
  };
}

/** A Linux machine's GPU device nodes: DRM render nodes (Mesa, AMD, Intel), NVIDIA's driver, WSL2's GPU. */
export function linuxGpuDevices(dev = "/dev"): string[] {
  const found: string[] = [];
  try {
    for (const n of fs.readdirSync(path.join(dev, "dri"))) if (n.startsWith("renderD")) found.push(path.join(dev, "dri", n));
  } catch {
    // no /dev/dri
  }
  try {
    for (const n of fs.readdirSync(dev)) if (/^nvidia\d+$/.test(n) || n === "dxg") found.push(path.join(dev, n));
  } catch {
    // no /dev at all
  }
  return found;
}

// `import()` through a variable so TypeScript does not resolve the optional package.
const importOptional = (name: string): Promise<unknown> => import(name);

function notInstalled(err: unknown, name: string): boolean {
  const e = err as { code?: string; message?: string };
  return (e?.code === "MODULE_NOT_FOUND" || e?.code === "ERR_MODULE_NOT_FOUND") && String(e?.message).includes(name);
}

/**
 * One Dawn instance, adapter and device per process (and API). Dawn's Node.js binding lives only while
 * the object `create()` returned is referenced: an instance made by a second start of the engine and
 * kept nowhere was collected while the backend still used its device, and the process died with SIGSEGV
 * at the next GPU call (seen on an NVIDIA H200, where `auto` starts Dawn before a test asks for webgpu).
 * So the instance, the adapter and the device are made once and held here for the life of the process,
 * and every later start reuses them.
 */
interface DawnSession {
  api: WebGPUApi;
  gpu: GPU;
  adapter: GPUAdapter;
  device: GPUDevice;
  found: WebGPUAdapter;
}
let session: DawnSession | null = null;

/** The GPUDevice the webgpu engine runs on (TF.js and the course's own kernels share it); null before it starts. */
export function webgpuDevice(): GPUDevice | null {
  return session?.device ?? null;
}

async function openSession(api: WebGPUApi, dawn: { create: (flags: string[]) => GPU }): Promise<DawnSession> {
  if (session !== null && session.api === api) return session;
  if (session !== null) throw new ConfigError(`webgpu: already started on ${session.found.api}; one API per process (COURSE_WEBGPU_API)`);
  // OpenGL ES without a window: Mesa's surfaceless EGL platform
  if (api === "opengles" && process.env.EGL_PLATFORM === undefined) process.env.EGL_PLATFORM = "surfaceless";
  const gpu = dawn.create([`backend=${api}`]);
  const adapter = await gpu.requestAdapter({
    powerPreference: "high-performance",
    // Dawn offers OpenGL ES adapters only in WebGPU's compatibility mode
    ...(api === "opengles" ? { featureLevel: "compatibility" } : {}),
  } as GPURequestAdapterOptions);
  if (adapter === null) throw new EngineSkipped(`webgpu: no ${API_NAMES[api]} adapter`);
  const info = adapter.info as unknown as AdapterInfo;
  const name = adapterName(info);
  const software = isSoftwareAdapter(info);
  const limits = adapter.limits;
  // the limits tfjs's own factory asks for (the adapter's best), and as many storage buffers per kernel as
  // it allows (the course's kernels bind up to 8)
  const device = await adapter.requestDevice({
    requiredFeatures: adapter.features.has("timestamp-query") ? ["timestamp-query"] : [],
    requiredLimits: {
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxBufferSize: limits.maxBufferSize,
      maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
      maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
    },
  });
  const maxBufferBytes = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  session = { api, gpu, adapter, device, found: { name, api: API_NAMES[api], software, maxBufferBytes } };
  return session;
}

/**
 * Load Dawn and the tfjs backend, pick the adapter, and register the "webgpu" backend on it.
 * Throws EngineSkipped (with the engine line's words) when a package is missing, there is no
 * adapter, or (`allowSoftware` false, as `auto` asks) the only adapter is a software one.
 * Returns the notes for the engine line.
 */
export async function loadWebGPU(allowSoftware: boolean): Promise<string[]> {
  const api = apiFromEnv();
  // auto wants a hardware GPU: on Linux one needs a device node, and without any, Dawn would only find a
  // software rasteriser, after 0.1-1 s and (on lavapipe) two warnings of its own
  if (!allowSoftware && process.platform === "linux" && linuxGpuDevices().length === 0) {
    throw new EngineSkipped("webgpu: no GPU device (/dev/dri/renderD*, /dev/nvidia*, /dev/dxg), not probed");
  }
  let dawn: { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  try {
    dawn = (await importOptional("webgpu")) as typeof dawn;
  } catch (err) {
    if (notInstalled(err, "webgpu")) throw new EngineSkipped("webgpu not installed");
    throw err;
  }
  const { gpu, adapter, device, found } = await openSession(api, dawn);
  if (found.software && !allowSoftware) {
    throw new EngineSkipped(`webgpu: only a software adapter (${found.name}, ${found.api}), not chosen by auto`);
  }
  // Dawn's globals, then navigator.gpu, then the backend (it checks navigator.gpu when it loads)
  const g = globalThis as Record<string, unknown>;
  for (const [key, value] of Object.entries(dawn.globals)) if (!(key in g)) g[key] = value;
  const nav = (g.navigator ?? {}) as { gpu?: GPU };
  if (nav.gpu === undefined) Object.defineProperty(nav, "gpu", { value: gpu, configurable: true });
  if (g.navigator === undefined) g.navigator = nav;
  let backendModule: { WebGPUBackend: new (device: unknown, info: unknown) => tf.KernelBackend };
  try {
    backendModule = require("@tensorflow/tfjs-backend-webgpu");
  } catch (err) {
    if (notInstalled(err, "tfjs-backend-webgpu")) throw new EngineSkipped("webgpu: @tensorflow/tfjs-backend-webgpu not installed");
    throw err;
  }
  // replace the backend's own registration (its adapter choice) with this device
  if (tf.findBackendFactory("webgpu") !== null) tf.removeBackend("webgpu");
  tf.registerBackend("webgpu", () => {
    const backend = new backendModule.WebGPUBackend(device, adapter.info);
    guardBuffers(backend, found.maxBufferBytes, `${found.name} (${found.api})`);
    return backend;
  });
  active = found;
  const notes = [`${found.name}, ${found.api}`];
  if (found.software) notes.push("a software adapter: correct, but far slower than the CPU engines");
  notes.push(`buffers up to ${mb(found.maxBufferBytes)}`);
  return notes;
}

/**
 * Submit the commands TF.js's WebGPU backend has recorded but not yet sent (it batches them), so work the
 * course's own runtime submits next runs after them. Nothing on other engines.
 */
export function flushWebGPUBackend(): void {
  if (tf.getBackend() !== "webgpu") return;
  const backend = tf.backend() as unknown as { commandEncoder: unknown; endComputePassEncoder(): void; submitQueue(): void };
  if (backend.commandEncoder == null) return;
  backend.endComputePassEncoder(); // as the backend does itself before it submits
  backend.submitQueue();
}
