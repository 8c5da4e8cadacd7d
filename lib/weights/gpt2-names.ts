/**
 * GPT-2's checkpoint names (`wte`, `h.0.attn.c_attn`, `ln_f`…) and where each one goes in the
 * library's model. This file is the one place that knows them: the loader and the saver in
 * gpt2-directory.ts only follow `gpt2Layout`.
 *
 * Two details of the checkpoint shape the map:
 * - GPT-2 uses `Conv1D` layers, whose weights are stored (in, out), the library's own
 *   layout for `Linear`, so they are copied as they are (no transpose, unlike `nn.Linear`).
 * - Query, key and value are one fused `c_attn` matrix (C, 3C); the book's model has three
 *   (C, C) matrices, so it is split column-wise in that order.
 */
import { GPTConfig } from "../model/config";

/** transformers' `GPT2LMHeadModel` saves its body under this prefix; OpenAI's conversion does not. */
export const HF_PREFIX = "transformer.";
/** The token embedding: also the output head when the file has no separate one (weight tying). */
export const TOKEN_EMBEDDING = "wte.weight";
/** The output head, outside the `transformer.` body and optional: GPT-2 ties it to wte. */
export const LM_HEAD = "lm_head.weight";
/** The causal-mask buffers some GPT-2 files carry: constants, not weights, so they are skipped. */
export const MASK_BUFFER = /^h\.\d+\.attn\.(bias|masked_bias)$/;

/** One checkpoint tensor: its name (without "transformer."), shape, and where it goes. */
export interface MappedTensor {
  hf: string;
  /** shape in the checkpoint, as config.json implies */
  shape: number[];
  /** the library parameter(s) it fills: three for the fused query/key/value */
  lib: string[];
  /** copy as is; split (…, 3C) into q, k, v along the last axis; or transpose (V, C) -> (C, V) */
  how: "copy" | "splitQKV" | "transpose";
}

/**
 * How many weights `gpt2Layout(cfg)` holds, without lm_head (optional: tied to wte), counted
 * without building the layout, so a config.json asking for 10^9 layers is sized before anything
 * is made for them. Per block: ln_1 and ln_2 4C, c_attn 3C^2 + 3C, attn.c_proj C^2 + C,
 * c_fc 4C^2 + 4C, mlp.c_proj 4C^2 + C.
 */
export function gpt2WeightCount(cfg: GPTConfig): number {
  const { vocabSize: V, contextLength: T, embDim: C, nLayers: L } = cfg;
  return V * C + T * C + L * (12 * C * C + 13 * C) + 2 * C;
}

/** Checkpoint name -> library name, for every GPT-2 tensor (lm_head.weight last, optional). */
export function gpt2Layout(cfg: GPTConfig): MappedTensor[] {
  const { vocabSize: V, contextLength: T, embDim: C } = cfg;
  const map: MappedTensor[] = [
    { hf: TOKEN_EMBEDDING, shape: [V, C], lib: ["tokEmb.weight"], how: "copy" },
    { hf: "wpe.weight", shape: [T, C], lib: ["posEmb.weight"], how: "copy" },
  ];
  const qkv = (b: string, kind: string) => ["wQuery", "wKey", "wValue"].map((w) => `${b}.att.${w}.${kind}`);
  for (let i = 0; i < cfg.nLayers; i++) {
    const h = `h.${i}`;
    const b = `blocks.${i}`;
    map.push(
      { hf: `${h}.ln_1.weight`, shape: [C], lib: [`${b}.norm1.scale`], how: "copy" },
      { hf: `${h}.ln_1.bias`, shape: [C], lib: [`${b}.norm1.shift`], how: "copy" },
      { hf: `${h}.attn.c_attn.weight`, shape: [C, 3 * C], lib: qkv(b, "weight"), how: "splitQKV" },
      { hf: `${h}.attn.c_attn.bias`, shape: [3 * C], lib: qkv(b, "bias"), how: "splitQKV" },
      { hf: `${h}.attn.c_proj.weight`, shape: [C, C], lib: [`${b}.att.outProj.weight`], how: "copy" },
      { hf: `${h}.attn.c_proj.bias`, shape: [C], lib: [`${b}.att.outProj.bias`], how: "copy" },
      { hf: `${h}.ln_2.weight`, shape: [C], lib: [`${b}.norm2.scale`], how: "copy" },
      { hf: `${h}.ln_2.bias`, shape: [C], lib: [`${b}.norm2.shift`], how: "copy" },
      { hf: `${h}.mlp.c_fc.weight`, shape: [C, 4 * C], lib: [`${b}.ff.fc1.weight`], how: "copy" },
      { hf: `${h}.mlp.c_fc.bias`, shape: [4 * C], lib: [`${b}.ff.fc1.bias`], how: "copy" },
      { hf: `${h}.mlp.c_proj.weight`, shape: [4 * C, C], lib: [`${b}.ff.fc2.weight`], how: "copy" },
      { hf: `${h}.mlp.c_proj.bias`, shape: [C], lib: [`${b}.ff.fc2.bias`], how: "copy" },
    );
  }
  map.push(
    { hf: "ln_f.weight", shape: [C], lib: ["finalNorm.scale"], how: "copy" },
    { hf: "ln_f.bias", shape: [C], lib: ["finalNorm.shift"], how: "copy" },
    // nn.Linear stores (out, in) = (V, C); the library's head is (in, out) = (C, V)
    { hf: LM_HEAD, shape: [V, C], lib: ["outHead.weight"], how: "transpose" },
  );
  return map;
}
