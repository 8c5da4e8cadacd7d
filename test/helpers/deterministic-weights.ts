/**
 * Deterministic GPT weights, the same bit for bit here and in the PyTorch reference
 * (test/reference/gpt_reference.py), so golden tests need no committed weight files.
 *
 * The formula (version 1), for a parameter with library name `name` and library-layout shape
 * (Linear weights (in, out), embeddings (rows, C)), at row-major flat index k:
 *
 *   seed    = FNV-1a 32-bit hash of the ASCII name
 *   x       = (k * 0x9E3779B1 + seed) mod 2^32, then lowbias32: x ^= x >> 16; x *= 0x7FEB352D;
 *             x ^= x >> 15; x *= 0x846CA68B; x ^= x >> 16   (all mod 2^32)
 *   v       = x / 2^32 * 2 - 1                         (float64, uniform in [-1, 1))
 *   value_k = float32(offset + scale * v)
 *
 * with (offset, scale) = (1, 0.2) for `*.scale`, (0, 0.1) for `*.shift` and `*.bias`,
 * (0, 1) for tokEmb.weight, (0, 0.5) for posEmb.weight, (0, 3/sqrt(in)) for outHead.weight,
 * and (0, 1/sqrt(in)) for every other (in, out) weight. With `tiedHead`, outHead.weight is
 * instead the transpose of tokEmb.weight, as in GPT-2's checkpoints (no lm_head.weight).
 *
 * Integer arithmetic until the last float64 steps means no libm differences between languages.
 */
import * as tf from "@tensorflow/tfjs";
import { GPTConfig } from "../../lib/model/config";
import { GPTModel } from "../../lib/model/gpt";

export const DETERMINISTIC_WEIGHTS_VERSION = 1;

export function fnv1a32(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function hash32(k: number, seed: number): number {
  let x = (Math.imul(k, 0x9e3779b1) + seed) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

function offsetScale(name: string, shape: number[]): [number, number] {
  if (name.endsWith(".scale")) return [1, 0.2];
  if (name.endsWith(".shift") || name.endsWith(".bias")) return [0, 0.1];
  if (name === "tokEmb.weight") return [0, 1];
  if (name === "posEmb.weight") return [0, 0.5];
  if (name === "outHead.weight") return [0, 3 / Math.sqrt(shape[0])];
  return [0, 1 / Math.sqrt(shape[0])]; // an (in, out) matrix
}

/**
 * The values of one parameter, row-major in the library layout. `salt` (default "") is hashed in front of
 * the name, giving a second, unrelated set of weights of the same shapes (DPO's reference model).
 */
export function deterministicValues(name: string, shape: number[], salt = ""): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const seed = fnv1a32(salt + name);
  const [offset, scale] = offsetScale(name, shape);
  const out = new Float32Array(n); // the store rounds each float64 to float32, as numpy's astype
  for (let k = 0; k < n; k++) {
    const v = (hash32(k, seed) / 4294967296) * 2 - 1;
    out[k] = offset + scale * v;
  }
  return out;
}

/** Library parameter names and shapes for a config, in the order GPTModel registers them. */
export function libraryParamShapes(cfg: GPTConfig): Array<[string, number[]]> {
  const { vocabSize: V, contextLength: T, embDim: C } = cfg;
  const shapes: Array<[string, number[]]> = [["tokEmb.weight", [V, C]], ["posEmb.weight", [T, C]]];
  for (let i = 0; i < cfg.nLayers; i++) {
    const p = `blocks.${i}.`;
    shapes.push([`${p}norm1.scale`, [C]], [`${p}norm1.shift`, [C]]);
    for (const w of ["wQuery", "wKey", "wValue"]) {
      shapes.push([`${p}att.${w}.weight`, [C, C]]);
      if (cfg.qkvBias) shapes.push([`${p}att.${w}.bias`, [C]]);
    }
    shapes.push([`${p}att.outProj.weight`, [C, C]], [`${p}att.outProj.bias`, [C]]);
    shapes.push([`${p}norm2.scale`, [C]], [`${p}norm2.shift`, [C]]);
    shapes.push([`${p}ff.fc1.weight`, [C, 4 * C]], [`${p}ff.fc1.bias`, [4 * C]]);
    shapes.push([`${p}ff.fc2.weight`, [4 * C, C]], [`${p}ff.fc2.bias`, [C]]);
  }
  shapes.push(["finalNorm.scale", [C]], ["finalNorm.shift", [C]], ["outHead.weight", [C, V]]);
  return shapes;
}

export interface NamedArray {
  shape: number[];
  values: Float32Array;
}

/** Every parameter of a config, keyed by library name (plain arrays: no tensors to dispose). */
export function deterministicWeights(cfg: GPTConfig, opts: { tiedHead?: boolean; salt?: string } = {}): Map<string, NamedArray> {
  const out = new Map<string, NamedArray>();
  for (const [name, shape] of libraryParamShapes(cfg)) out.set(name, { shape, values: deterministicValues(name, shape, opts.salt) });
  if (opts.tiedHead) {
    const emb = out.get("tokEmb.weight")!;
    const [v, c] = emb.shape;
    const head = new Float32Array(v * c);
    for (let i = 0; i < v; i++) for (let j = 0; j < c; j++) head[j * v + i] = emb.values[i * c + j]; // (V, C) -> (C, V)
    out.set("outHead.weight", { shape: [c, v], values: head });
  }
  return out;
}

/** A GPTModel holding the deterministic weights (built with zeros, then assigned). */
export function deterministicModel(cfg: GPTConfig, opts: { tiedHead?: boolean; salt?: string } = {}): GPTModel {
  const model = new GPTModel(cfg, { init: "zeros" });
  for (const [name, { shape, values }] of deterministicWeights(cfg, opts)) {
    const v = model.param(name);
    tf.tidy(() => v.assign(tf.tensor(values, shape)));
  }
  return model;
}
