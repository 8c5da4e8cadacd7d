/**
 * `tf.variableGrads`, with the backward pass giving its memory back as it goes.
 *
 * TF.js's own backward pass (tfjs-core 4.22, `Engine.gradients`) walks the tape from the loss back to the
 * weights and keeps, until the very end, two things it no longer needs: every tensor an op saved for its
 * gradient (the activations: the tanh GELU alone saves nine (B, T, 4C) tensors a layer), and the gradient of
 * every intermediate tensor. Its peak is therefore all the activations *plus* all the intermediate
 * gradients. PyTorch's autograd frees both as soon as an op's backward has run; so does this:
 *
 *   - once an op's input gradients are computed, the tensors it saved are disposed;
 *   - the gradients of its outputs are disposed too (every op that reads those outputs comes later on the
 *     tape, so it has been differentiated already), unless one was handed on unchanged as an input's gradient.
 *
 * Same ops, same order, same numbers: only the lifetimes change (test/lean-gradients.test.ts checks every
 * gradient against `tf.variableGrads` bit for bit, and that nothing leaks). The plain twin stays one switch
 * away: `COURSE_LEAN_BACKPROP=0`. Written against tfjs-core 4.22's Engine (`startTape`, `endTape`,
 * `state.activeTape`, `state.gradientDepth`, each tape node's `inputs`, `outputs`, `saved` and `gradient`);
 * on a TF.js without them, or inside another gradient's backward pass, it runs `tf.variableGrads` itself.
 */
import * as tf from "@tensorflow/tfjs";

/** One recorded op, as tfjs-core's tape keeps it. */
interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  saved?: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
}

interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  startTape(): void;
  endTape(): void;
}

/** Whether the lean backward pass is on (default) or TF.js's own runs (`COURSE_LEAN_BACKPROP=0`). */
export const LEAN_BACKPROP = { on: process.env.COURSE_LEAN_BACKPROP !== "0" };

function internals(): EngineInternals | null {
  const e = tf.engine() as unknown as Partial<EngineInternals>;
  // `activeTape` exists only once some tape has run; `gradientDepth` from the start
  const ok = typeof e.startTape === "function" && typeof e.endTape === "function" && typeof e.state?.gradientDepth === "number";
  return ok ? (e as EngineInternals) : null;
}

/**
 * The ops of `tape` on a path from one of `xs` to `y`, in tape order, each with only the inputs that depend on
 * an x (the others need no gradient). What tfjs-core's getFilteredNodesXToY computes.
 */
export function pathToLoss(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const nodeFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((t) => fromX.has(t.id))) {
      nodeFromX.add(node.id);
      for (const o of node.outputs) fromX.add(o.id);
    }
  }
  const toY = new Set([y.id]);
  const nodeToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (node.outputs.some((o) => toY.has(o.id))) {
      nodeToY.add(node.id);
      for (const t of Object.values(node.inputs)) toY.add(t.id);
    }
  }
  return tape
    .filter((n) => nodeFromX.has(n.id) && nodeToY.has(n.id))
    .map((n) => ({ ...n, inputs: Object.fromEntries(Object.entries(n.inputs).filter(([, t]) => fromX.has(t.id))) }));
}

/** For each x, the index in `path` of the first op that reads it: once the backward pass is past that op, x's gradient is final. */
function firstUses(path: TapeNode[], xs: tf.Tensor[]): Map<number, tf.Tensor[]> {
  const first = new Map<number, number>();
  path.forEach((node, i) => {
    for (const t of Object.values(node.inputs)) if (!first.has(t.id)) first.set(t.id, i);
  });
  const byNode = new Map<number, tf.Tensor[]>();
  for (const x of xs) {
    const i = first.get(x.id);
    if (i !== undefined) byNode.set(i, [...(byNode.get(i) ?? []), x]);
  }
  return byNode;
}

/**
 * Walk `path` backwards from dL/dy = 1, freeing each op's saved tensors and output gradients once used. With
 * `onGradient`, each x's gradient is handed over as soon as it is final and freed right after (not returned).
 */
function backprop(path: TapeNode[], xs: tf.Tensor[], y: tf.Tensor, onGradient?: (x: tf.Tensor, g: tf.Tensor) => void): (tf.Tensor | null)[] {
  const grad = new Map<number, tf.Tensor>([[y.id, tf.onesLike(y)]]);
  const wanted = new Set(xs.map((x) => x.id));
  const finalAt = onGradient === undefined ? new Map<number, tf.Tensor[]>() : firstUses(path, xs);
  for (let i = path.length - 1; i >= 0; i--) {
    const node = path[i];
    if (node.gradient === undefined) throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
    const inputGrads = node.gradient(node.outputs.map((o) => grad.get(o.id) ?? null));
    for (const [name, x] of Object.entries(node.inputs)) {
      if (!(name in inputGrads)) throw new Error(`Cannot backprop through input ${name} of ${node.kernelName}.`);
      const dx = tf.tidy(() => inputGrads[name]());
      if (dx.dtype !== "float32") throw new Error(`Error in gradient for op ${node.kernelName}: the gradient of input ${name} must be float32, not ${dx.dtype}`);
      if (!tf.util.arraysEqual(dx.shape, x.shape)) {
        throw new Error(`Error in gradient for op ${node.kernelName}: the gradient of input '${name}' has shape [${dx.shape}], the input [${x.shape}]`);
      }
      const sum = grad.get(x.id);
      if (sum === undefined) grad.set(x.id, dx);
      else {
        grad.set(x.id, tf.add(sum, dx));
        sum.dispose();
      }
    }
    // what this op's gradient read is no longer needed, unless it was handed on as an input's gradient
    const handedOn = new Set(Object.values(node.inputs).map((x) => grad.get(x.id)));
    for (const t of node.saved ?? []) if (!handedOn.has(t)) t.dispose();
    for (const o of node.outputs) {
      const g = grad.get(o.id);
      if (g === undefined || wanted.has(o.id)) continue;
      grad.delete(o.id);
      if (!handedOn.has(g)) g.dispose();
    }
    for (const x of finalAt.get(i) ?? []) {
      const g = grad.get(x.id) as tf.Tensor;
      grad.delete(x.id);
      (onGradient as (x: tf.Tensor, g: tf.Tensor) => void)(x, g);
      g.dispose();
    }
  }
  return xs.map((x) => grad.get(x.id) ?? null);
}

/** A loss whose forward pass has run, with its tape kept for one backward pass (or discarded). */
export interface RecordedLoss {
  value: tf.Scalar;
  /**
   * The gradient of each trainable variable the loss reaches, keyed by the variable's engine name; the caller
   * disposes them. With `onGradient`, each is handed over instead as soon as the backward pass has made it
   * final (an optimizer can update that weight while the rest of the pass runs) and freed right after: then
   * no two layers' gradients need to be held at once, and nothing is returned.
   */
  backward(onGradient?: (v: tf.Variable, g: tf.Tensor) => void): tf.NamedTensorMap;
  /** Drop the tape without a backward pass (the loss is not worth one); the value stays the caller's. */
  discard(): void;
}

/**
 * Run `f` (the loss of `vars`), keeping what the backward pass needs, and return before differentiating: the
 * caller may read the loss first. `COURSE_LEAN_BACKPROP=0` (or a TF.js without the internals, or a call inside
 * another backward pass) runs `tf.variableGrads` at once and `backward` hands over its gradients.
 */
export function recordLoss(f: () => tf.Scalar, vars: tf.Variable[]): RecordedLoss {
  const engine = internals();
  const trainable = vars.filter((v) => v.trainable);
  if (!LEAN_BACKPROP.on || engine === null || engine.state.gradientDepth !== 0) {
    const { value, grads } = tf.variableGrads(f, vars);
    return {
      value,
      backward: (onGradient) => {
        if (onGradient === undefined) return grads;
        for (const v of trainable) {
          const g = grads[v.name];
          if (g === undefined || g === null) continue;
          onGradient(v, g);
          g.dispose();
        }
        return {};
      },
      discard: () => tf.dispose(Object.values(grads)),
    };
  }
  if (trainable.length === 0) throw new Error("leanVariableGrads: none of the variables is trainable");
  engine.startTape();
  let y: tf.Tensor;
  try {
    y = tf.tidy("forward", f);
  } finally {
    engine.endTape();
  }
  const tape = engine.state.activeTape ?? [];
  let done = false;
  const release = () => {
    for (const node of tape) for (const t of node.saved ?? []) t.dispose(); // ops off the path, and after an error
    if (engine.state.activeTape === tape) engine.state.activeTape = null;
    done = true;
  };
  if (y.rank !== 0) {
    release();
    y.dispose();
    throw new Error(`leanVariableGrads: f must return a scalar, got a rank-${y.rank} tensor`);
  }
  const backward = (onGradient?: (v: tf.Variable, g: tf.Tensor) => void): tf.NamedTensorMap => {
    if (done) throw new Error("leanVariableGrads: the tape was already used");
    // tidy keeps what it returns: a list of tensors (an untouched variable's null left out, placed back below)
    let found: (tf.Tensor | null)[] = [];
    const hand = onGradient === undefined ? undefined : (x: tf.Tensor, g: tf.Tensor) => onGradient(x as tf.Variable, g);
    tf.tidy("backward", () => {
      try {
        found = backprop(pathToLoss(tape, trainable, y), trainable, y, hand);
        return found.filter((g): g is tf.Tensor => g !== null);
      } finally {
        release();
      }
    });
    const named: tf.NamedTensorMap = {};
    trainable.forEach((v, i) => {
      const g = found[i];
      if (g !== null) named[v.name] = g;
    });
    return named;
  };
  return { value: y as tf.Scalar, backward, discard: () => done || release() };
}

/**
 * `tf.variableGrads(f, vars)` (see the file comment): the loss and the gradient of each trainable variable
 * that it reaches, keyed by the variable's engine name. The caller disposes both.
 */
export function leanVariableGrads(f: () => tf.Scalar, vars: tf.Variable[]): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  const recorded = recordLoss(f, vars);
  return { value: recorded.value, grads: recorded.backward() };
}
