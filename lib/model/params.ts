/**
 * Where a model's parameters live: one `tf.Variable` per named tensor.
 *
 * Each layer registers its variables under a dotted name (`blocks.0.att.wQuery.weight`),
 * like PyTorch's `state_dict()` keys. The weight loader maps checkpoint names to these,
 * and the optimizer walks the same map.
 */
import * as tf from "@tensorflow/tfjs";
import { INIT_STD } from "../core/book";
import { Rng } from "../core/random";
import { checkFitsDevice } from "../engine/webgpu";

export type ParamMap = Map<string, tf.Variable>;

/** How a freshly built model fills its parameters. */
export type InitMode =
  /** normal(0, INIT_STD = 0.02) weights as GPT-2's paper and nanoGPT do; LayerNorm scale 1, biases 0 */
  | "random"
  /** all zeros (LayerNorm scale 1): fast, for a model whose weights will be loaded next */
  | "zeros";

/** What a layer needs while it creates its parameters. */
export interface ParamContext {
  params: ParamMap;
  /** draws the seeds for the initial weights, so a given seed builds the same model */
  rng: Rng;
  init: InitMode;
}

function register(ctx: ParamContext, name: string, value: tf.Tensor): tf.Variable {
  if (ctx.params.has(name)) throw new Error(`parameter "${name}" registered twice`);
  // no tf.Variable name: tfjs names are global, and two models must be able to coexist
  const v = tf.variable(value, true);
  value.dispose();
  ctx.params.set(name, v);
  return v;
}

/** A weight matrix or embedding: normal(0, std) when initialising randomly. */
export function normalParam(ctx: ParamContext, name: string, shape: number[], std = INIT_STD): tf.Variable {
  // draw the seed even for "zeros", so the dropout stream does not depend on the init mode
  const seed = ctx.rng.seed();
  // on a GPU, a table past one buffer's limit would compute zeros: refuse it before it exists
  checkFitsDevice(`model parameter "${name}"`, shape);
  const value = ctx.init === "random" ? tf.randomNormal(shape, 0, std, "float32", seed) : tf.zeros(shape);
  return register(ctx, name, value);
}

/**
 * A table too large for one GPU buffer, as blocks of rows (or, `columns`, of columns): one variable per
 * block, named `${name}:${j}`, normal(0, std). One seed is drawn for the whole table, as normalParam
 * does, so the rest of the model's seeds (and the dropout stream) do not depend on how it is split.
 */
export function normalParts(ctx: ParamContext, name: string, shapes: number[][], std = INIT_STD): tf.Variable[] {
  const seed = ctx.rng.seed();
  return shapes.map((shape, j) => {
    checkFitsDevice(`model parameter "${partName(name, j)}"`, shape);
    const value = ctx.init === "random" ? tf.randomNormal(shape, 0, std, "float32", seed + j) : tf.zeros(shape);
    return register(ctx, partName(name, j), value);
  });
}

/** The name of block j of a split parameter. */
export const partName = (name: string, j: number): string => `${name}:${j}`;

/** A parameter name without its block suffix: "tokEmb.weight:1" -> "tokEmb.weight". */
export const baseName = (name: string): string => name.replace(/:\d+$/, "");

/** A bias or LayerNorm parameter: a constant (0 for biases and shifts, 1 for scales). */
export function constParam(ctx: ParamContext, name: string, shape: number[], value: number): tf.Variable {
  checkFitsDevice(`model parameter "${name}"`, shape);
  return register(ctx, name, tf.fill(shape, value, "float32"));
}
