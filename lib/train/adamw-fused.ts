/**
 * AdamW on the native engine as TensorFlow's own fused, in-place kernels: the same update as adamw.ts (PyTorch's
 * `torch.optim.AdamW`), in two passes over each parameter instead of fourteen.
 *
 * adamw.ts writes the update as TF.js ops: 3 for the first moment, 4 for the second, 7 for the parameter, each
 * reading one or two full-size tensors and writing a fresh one (gpt2-small: 14 passes over 163M values and
 * 14 new 622 MB allocations a step; PyTorch's AdamW makes 8 passes, in place). Here the parameter and its
 * moments live in libtensorflow's resource variables (l../engine/native-ops.ts) and each step runs:
 *
 *   1. p · (1 − lr·wd), the decoupled weight decay, written into the variable (one multiplication, as PyTorch
 *      rounds it);
 *   2. `ResourceApplyAdam(p, m, v, …, g)`: both moments and the parameter in one pass, in place.
 *
 * TensorFlow's Adam puts ε outside the bias correction: p ← p − lr·√(1−β2ᵗ)/(1−β1ᵗ) · m / (√v + ε'), which is
 * PyTorch's p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε) exactly when ε' = ε·√(1−β2ᵗ); its moments are
 * m + (g − m)(1 − β1) (PyTorch's foreach AdamW's lerp, the same) and v + (g² − v)(1 − β2) (PyTorch's
 * β2·v + (1 − β2)·g²: equal in real arithmetic, a rounding apart in float32).
 * test/adamw-fused.test.ts holds it to the plain AdamW over several steps.
 *
 * The model's TF.js variable is then pointed at the updated buffer (a read shares it; the next update finds it
 * shared and copies it first, so no tensor TF.js holds changes under it). A parameter assigned from outside
 * (a checkpoint loaded, LoRA merged) is noticed by its new data id and copied in again.
 *
 * `createAdamW` picks it on the native engine; `COURSE_FUSED_ADAMW=0` (or another engine) gives adamw.ts.
 */
import * as tf from "@tensorflow/tfjs";
import { ConfigError } from "../core/errors";
import { AdamScalars, applyAdam, nativeBackend, NativeVariable } from "../engine/native-ops";
import { AdamW, AdamWOptions, AdamWState, SavedTensor } from "./adamw";

interface Slot {
  p: NativeVariable;
  m: NativeVariable;
  v: NativeVariable;
  /** the data id the model's variable had after our last write: another one means it was assigned from outside */
  seen: tf.DataId;
}

export class FusedAdamW extends AdamW {
  private readonly slots = new Map<string, Slot>();
  private readonly vars: Map<string, tf.Variable>;
  /** the scalars of the step `beginStep` started */
  private scalars: AdamScalars | null = null;

  constructor(params: Map<string, tf.Variable>, opts: AdamWOptions = {}) {
    super(params, opts);
    if (nativeBackend() === null) throw new ConfigError(`FusedAdamW runs on the native engine (tfjs-node); the engine is ${tf.getBackend()}`);
    this.vars = params;
  }

  override step(grads: Map<string, tf.Tensor> | Record<string, tf.Tensor>): void {
    const byName = grads instanceof Map ? grads : new Map(Object.entries(grads));
    for (const [name, g] of byName) this.check(name, g);
    this.beginStep();
    for (const name of this.vars.keys()) {
      const g = byName.get(name);
      if (g !== undefined) this.updateParam(name, g);
    }
  }

  /**
   * Start a step whose parameters are then updated one at a time (`updateParam`), e.g. each as soon as the
   * backward pass has its gradient (lib/train/step.ts): AdamW treats every parameter on its own, so this is
   * the same update as `step` with all the gradients, without holding them all at once.
   */
  beginStep(): void {
    this.stepCount += 1;
    const t = this.stepCount;
    const [beta1, beta2] = this.betas;
    this.scalars = {
      beta1Power: Math.pow(beta1, t),
      beta2Power: Math.pow(beta2, t),
      lr: this.lr,
      beta1,
      beta2,
      epsilon: this.eps * Math.sqrt(1 - Math.pow(beta2, t)), // PyTorch's ε, inside the bias correction
    };
  }

  /** Update one parameter with its gradient, in the step `beginStep` started. The gradient stays the caller's. */
  updateParam(name: string, g: tf.Tensor): void {
    const p = this.check(name, g);
    if (this.scalars === null) throw new ConfigError("AdamW.updateParam: no step begun (beginStep)");
    const slot = this.slot(name, p);
    const decay = 1 - this.lr * this.weightDecay;
    if (decay !== 1) {
      // p ← p · (1 − lr·wd), the decoupled decay, as PyTorch multiplies (TensorFlow's p − lr·wd·p rounds
      // differently, a unit in the last place a step)
      const decayed = tf.mul(p, decay);
      slot.p.write(decayed);
      decayed.dispose();
    }
    applyAdam(slot.p, slot.m, slot.v, this.scalars, g);
    const updated = slot.p.read();
    p.assign(updated);
    updated.dispose(); // the variable keeps its own reference
    slot.seen = p.dataId;
  }

  private check(name: string, g: tf.Tensor): tf.Variable {
    const p = this.vars.get(name);
    if (p === undefined) throw new ConfigError(`AdamW.step: gradient for unknown parameter "${name}"`);
    if (g.shape.join(",") !== p.shape.join(",")) {
      throw new ConfigError(`AdamW.step: gradient for "${name}" has shape [${g.shape}], parameter has [${p.shape}]`);
    }
    return p;
  }

  /** The resource variables of a parameter, made on its first update (moments zero, as PyTorch's). */
  private slot(name: string, p: tf.Variable): Slot {
    let slot = this.slots.get(name);
    if (slot === undefined) {
      const zeros = tf.zerosLike(p);
      slot = { p: new NativeVariable(p), m: new NativeVariable(zeros), v: new NativeVariable(zeros), seen: p.dataId };
      zeros.dispose();
      this.slots.set(name, slot);
    } else if (slot.seen !== p.dataId) {
      slot.p.write(p); // assigned from outside since our last update
      slot.seen = p.dataId;
    }
    return slot;
  }

  override get hasMoments(): boolean {
    return this.slots.size > 0;
  }

  override momentOf(_which: "m" | "v", _name: string): tf.Variable {
    throw new ConfigError("the fused AdamW keeps its moments in libtensorflow's variables: use exportState(), or COURSE_FUSED_ADAMW=0");
  }

  override async exportState(): Promise<AdamWState> {
    const dump = async (which: "m" | "v") => {
      const out: Record<string, SavedTensor> = {};
      for (const [name, slot] of this.slots) {
        const t = slot[which].read();
        out[name] = { shape: t.shape.slice(), data: (await t.data()) as Float32Array };
        t.dispose();
      }
      return out;
    };
    const [m, v] = [await dump("m"), await dump("v")];
    return { step: this.stepCount, lr: this.lr, betas: [this.betas[0], this.betas[1]], eps: this.eps, weightDecay: this.weightDecay, m, v };
  }

  override importState(state: AdamWState): void {
    for (const store of [state.m, state.v]) {
      for (const [name, saved] of Object.entries(store)) {
        const p = this.vars.get(name);
        if (p === undefined) throw new ConfigError(`AdamW.importState: state for unknown parameter "${name}"`);
        if (saved.shape.join(",") !== p.shape.join(",")) {
          throw new ConfigError(`AdamW.importState: "${name}" has shape [${saved.shape}], parameter has [${p.shape}]`);
        }
      }
    }
    this.dispose();
    this.stepCount = state.step;
    for (const [name, saved] of Object.entries(state.m)) {
      const p = this.vars.get(name) as tf.Variable;
      const slot = this.slot(name, p);
      const load = (target: NativeVariable, s: SavedTensor | undefined) => {
        if (s === undefined) return;
        const t = tf.tensor(s.data, s.shape, "float32");
        target.write(t);
        t.dispose();
      };
      load(slot.m, saved);
      load(slot.v, state.v[name]);
    }
  }

  override dispose(): void {
    for (const slot of this.slots.values()) for (const x of [slot.p, slot.m, slot.v]) x.dispose();
    this.slots.clear();
  }
}

/** Whether `createAdamW` gives the fused optimizer on the native engine (`COURSE_FUSED_ADAMW=0`: never). */
export const FUSED_ADAMW = { on: process.env.COURSE_FUSED_ADAMW !== "0" };

/** AdamW for `params`: the fused one on the native engine (unless switched off), else adamw.ts's. */
export function createAdamW(params: Map<string, tf.Variable>, opts: AdamWOptions = {}): AdamW {
  return FUSED_ADAMW.on && nativeBackend() !== null ? new FusedAdamW(params, opts) : new AdamW(params, opts);
}
