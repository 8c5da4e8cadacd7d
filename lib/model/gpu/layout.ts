/**
 * Where GPT-2's parameters live on the GPU for the course's own WebGPU step: every tensor at an element
 * offset in one of a few arenas (large buffers), in the layout the kernels want, and how each one is
 * made from the TF.js model's parameters.
 *
 * The layout is GPT-2's checkpoint layout, nearly: query, key and value as one (C, 3C) matrix (`c_attn`),
 * so one matmul makes all three; the output head transposed to (V, C), so a vocabulary block of it is a
 * contiguous block of rows. A table past the device's binding limit (the token embedding and the head:
 * 147 MiB for gpt2-small, where WebGPU's default binds 128 MiB) is split into blocks of vocabulary rows,
 * each a tensor of its own (`vocabBlocks`, shared with the TF.js model's own split).
 *
 * The gradients and AdamW's two moments use the same layout in arenas of their own, so AdamW is one
 * dispatch per arena, and every tensor's gradient sits at its parameter's offset.
 */
import type { GPTConfig } from "../config";
import { partName } from "../params";
import { HEAD_WEIGHT, TOKEN_EMBEDDING } from "../vocab-table";

/**
 * How a GPU tensor is made from TF.js tensors of the library (parameters, or AdamW's moments of them), by
 * library name. Block j of a table split into vocabulary blocks is the library's part j (both split at
 * `model.tables.blocks`), so no case needs a slice.
 */
export type Source =
  /** the tensor itself */
  | { kind: "copy"; name: string }
  /** three tensors side by side along the last axis: query, key, value (C, C) -> (C, 3C), or their biases -> (3C) */
  | { kind: "concat"; names: [string, string, string] }
  /** a (C, n) block of the head, transposed to (n, C) */
  | { kind: "transpose"; name: string };

export interface GpuTensorSpec {
  /** the GPU tensor's name, e.g. "h.3.qkv.w", "wte.0" */
  name: string;
  shape: number[];
  source: Source;
  /** which arena, and the element offset in it */
  arena: number;
  offset: number;
}

/** Elements an offset is aligned to (256 bytes: any device's storage offset alignment, and vec4-friendly). */
const ALIGN = 64;

export interface GpuLayout {
  cfg: GPTConfig;
  tensors: Map<string, GpuTensorSpec>;
  /** elements used in each arena */
  arenaSizes: number[];
  /** the vocabulary blocks of the token embedding and the head: [start, count] */
  blocks: Array<[number, number]>;
}

/**
 * The GPU layout of a model of `cfg` whose vocabulary tables are split at `blocks` (the model's own
 * `tables.blocks`), on a device that binds at most `maxBindingBytes` per buffer.
 */
export function gpuLayout(cfg: GPTConfig, blocks: Array<[number, number]>, maxBindingBytes: number): GpuLayout {
  const { contextLength: T, embDim: C, nLayers: L } = cfg;
  const part = (name: string, j: number) => (blocks.length === 1 ? name : partName(name, j));
  const specs: Array<Omit<GpuTensorSpec, "arena" | "offset">> = [];
  blocks.forEach(([, count], j) => specs.push({ name: `wte.${j}`, shape: [count, C], source: { kind: "copy", name: part(TOKEN_EMBEDDING, j) } }));
  specs.push({ name: "wpe", shape: [T, C], source: { kind: "copy", name: "posEmb.weight" } });
  for (let l = 0; l < L; l++) {
    const b = `blocks.${l}`;
    const qkv = (kind: string) => ["wQuery", "wKey", "wValue"].map((w) => `${b}.att.${w}.${kind}`) as [string, string, string];
    specs.push(
      { name: `h.${l}.ln1.scale`, shape: [C], source: { kind: "copy", name: `${b}.norm1.scale` } },
      { name: `h.${l}.ln1.shift`, shape: [C], source: { kind: "copy", name: `${b}.norm1.shift` } },
      { name: `h.${l}.qkv.w`, shape: [C, 3 * C], source: { kind: "concat", names: qkv("weight") } },
      ...(cfg.qkvBias ? [{ name: `h.${l}.qkv.b`, shape: [3 * C], source: { kind: "concat", names: qkv("bias") } as Source }] : []),
      { name: `h.${l}.proj.w`, shape: [C, C], source: { kind: "copy", name: `${b}.att.outProj.weight` } },
      { name: `h.${l}.proj.b`, shape: [C], source: { kind: "copy", name: `${b}.att.outProj.bias` } },
      { name: `h.${l}.ln2.scale`, shape: [C], source: { kind: "copy", name: `${b}.norm2.scale` } },
      { name: `h.${l}.ln2.shift`, shape: [C], source: { kind: "copy", name: `${b}.norm2.shift` } },
      { name: `h.${l}.fc.w`, shape: [C, 4 * C], source: { kind: "copy", name: `${b}.ff.fc1.weight` } },
      { name: `h.${l}.fc.b`, shape: [4 * C], source: { kind: "copy", name: `${b}.ff.fc1.bias` } },
      { name: `h.${l}.fc2.w`, shape: [4 * C, C], source: { kind: "copy", name: `${b}.ff.fc2.weight` } },
      { name: `h.${l}.fc2.b`, shape: [C], source: { kind: "copy", name: `${b}.ff.fc2.bias` } },
    );
  }
  specs.push(
    { name: "lnf.scale", shape: [C], source: { kind: "copy", name: "finalNorm.scale" } },
    { name: "lnf.shift", shape: [C], source: { kind: "copy", name: "finalNorm.shift" } },
  );
  blocks.forEach(([, count], j) => specs.push({ name: `head.${j}`, shape: [count, C], source: { kind: "transpose", name: part(HEAD_WEIGHT, j) } }));

  // pack in order, a new arena whenever the next tensor would not fit the binding limit (or 1 GiB)
  const capacity = Math.floor(Math.min(maxBindingBytes, 2 ** 30) / 4 / ALIGN) * ALIGN;
  const tensors = new Map<string, GpuTensorSpec>();
  const arenaSizes = [0];
  for (const s of specs) {
    const size = s.shape.reduce((a, b) => a * b, 1);
    let at = Math.ceil(arenaSizes[arenaSizes.length - 1] / ALIGN) * ALIGN;
    if (at + size > capacity) {
      arenaSizes.push(0);
      at = 0;
    }
    tensors.set(s.name, { ...s, arena: arenaSizes.length - 1, offset: at });
    arenaSizes[arenaSizes.length - 1] = at + size;
  }
  return { cfg, tensors, arenaSizes, blocks };
}

/** The spec of a GPU tensor (a missing name is a bug in the caller). */
export function spec(layout: GpuLayout, name: string): GpuTensorSpec {
  const s = layout.tensors.get(name);
  if (s === undefined) throw new Error(`GPU layout: no tensor "${name}"`);
  return s;
}
