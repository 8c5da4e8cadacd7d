/**
 * AdamW, with exactly the update of PyTorch's `torch.optim.AdamW` (the book's
 * `torch.optim.AdamW(model.parameters(), lr=0.00005, weight_decay=0.1)`).
 *
 * For each parameter p with gradient g, at step t (counted from 1):
 *
 *   p ← p · (1 − lr · wd)                     decoupled weight decay, applied first
 *   m ← β1 · m + (1 − β1) · g                 first moment
 *   v ← β2 · v + (1 − β2) · g²                second moment
 *   p ← p − lr / (1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + ε)
 *
 * "Decoupled" is what the W adds to Adam: the decay shrinks the weights directly
 * instead of being added to the gradient, so it is not rescaled by √v.
 * Like the book (which passes all of `model.parameters()`), every parameter is
 * decayed, biases and LayerNorm scales included.
 *
 * The state (step count, m and v per parameter) can be exported as plain arrays
 * and imported again, so a resumed run continues the same trajectory.
 *
 * The defaults are PyTorch's (lr 1e-3, weight decay 0.01), as in `torch.optim.AdamW()`;
 * the book's run passes `BOOK_LR` and `BOOK_WEIGHT_DECAY` (lib/core/book.ts) explicitly.
 */
import * as tf from "@tensorflow/tfjs";
import { ConfigError } from "../core/errors";

export interface AdamWOptions {
  /** learning rate; PyTorch's default 1e-3, the book fine-tunes with `BOOK_LR` */
  lr?: number;
  /** decay rates of the first and second moment averages; PyTorch's default (0.9, 0.999) */
  betas?: [number, number];
  /** added to the denominator so it is never zero; PyTorch's default 1e-8 */
  eps?: number;
  /** decoupled weight decay; PyTorch's default 0.01, the book uses `BOOK_WEIGHT_DECAY` */
  weightDecay?: number;
}

/** One exported tensor: its shape and values (row-major). */
export interface SavedTensor {
  shape: number[];
  data: Float32Array;
}

/** Everything needed to continue optimizing exactly where we stopped. */
export interface AdamWState {
  /** number of `step` calls done so far */
  step: number;
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  /** first moment per parameter name (absent before the first step) */
  m: Record<string, SavedTensor>;
  /** second moment per parameter name */
  v: Record<string, SavedTensor>;
}

/**
 * The learning rate when a model starts from random weights and --lr is not given.
 * The book's `BOOK_LR` nudges a pretrained model; from scratch it would barely move the loss
 * in two epochs, so the small offline config trains with a larger step. Measured on the tiny
 * config (full data, the book's seed): at 1e-3 the validation loss was still falling after 6 epochs;
 * at 3e-3 it bottoms out in epoch 4 and climbs while the training loss keeps falling (the
 * overfitting lesson of section 7.6); at 5e-3 both losses fall more slowly than at 3e-3.
 */
export const RANDOM_INIT_LR = 3e-3;

/** Point a variable at a new value and free the tensor that carried it. */
function replace(variable: tf.Variable, value: tf.Tensor): void {
  variable.assign(value);
  value.dispose(); // the variable keeps its own reference to the data
}

export class AdamW {
  lr: number;
  readonly betas: [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  /** how many updates have been applied (PyTorch's `state["step"]`) */
  stepCount = 0;
  private readonly params: Map<string, tf.Variable>;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(params: Map<string, tf.Variable>, opts: AdamWOptions = {}) {
    this.params = params;
    this.lr = opts.lr ?? 1e-3;
    this.betas = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
    const bad = (x: number) => !Number.isFinite(x) || x < 0;
    if (bad(this.lr)) throw new ConfigError(`AdamW: lr must be a finite number >= 0, got ${this.lr}`);
    if (bad(this.weightDecay)) {
      throw new ConfigError(`AdamW: weightDecay must be a finite number >= 0, got ${this.weightDecay}`);
    }
    for (const b of this.betas) {
      if (!(b >= 0 && b < 1)) throw new ConfigError(`AdamW: betas must be in [0, 1), got [${this.betas.join(", ")}]`);
    }
  }

  /**
   * Apply one update. `grads` maps parameter names (the keys of `params`) to gradients
   * of the same shape; a parameter without a gradient is left alone (as PyTorch skips
   * `p.grad is None`). The gradients are not disposed: they belong to the caller.
   */
  step(grads: Map<string, tf.Tensor> | Record<string, tf.Tensor>): void {
    const get = (name: string): tf.Tensor | undefined =>
      grads instanceof Map ? grads.get(name) : (grads as Record<string, tf.Tensor>)[name];
    // check everything before touching anything, so a bad call leaves the state as it was
    for (const name of grads instanceof Map ? grads.keys() : Object.keys(grads)) {
      const p = this.params.get(name);
      if (p === undefined) throw new ConfigError(`AdamW.step: gradient for unknown parameter "${name}"`);
      const g = get(name) as tf.Tensor;
      if (g.shape.join(",") !== p.shape.join(",")) {
        throw new ConfigError(`AdamW.step: gradient for "${name}" has shape [${g.shape}], parameter has [${p.shape}]`);
      }
    }
    this.stepCount += 1;
    const t = this.stepCount;
    const [beta1, beta2] = this.betas;
    const biasCorrection1 = 1 - Math.pow(beta1, t);
    const biasCorrection2Sqrt = Math.sqrt(1 - Math.pow(beta2, t));
    const stepSize = this.lr / biasCorrection1;
    const decay = 1 - this.lr * this.weightDecay;
    const invBiasCorrection2Sqrt = 1 / biasCorrection2Sqrt;
    for (const [name, p] of this.params) {
      const g = get(name);
      if (g === undefined) continue;
      const m = this.moment(this.m, name, p);
      const v = this.moment(this.v, name, p);
      // three small scopes rather than one: each frees its temporaries (each the size of the
      // parameter) before the next starts, so an update of a large table holds a few copies, not a dozen
      replace(m, tf.tidy(() => tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)))); // m = β1·m + (1-β1)·g
      replace(v, tf.tidy(() => tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)))); // v = β2·v + (1-β2)·g²
      replace(
        p,
        tf.tidy(() => {
          // torch divides by sqrt(1 - beta2^t); multiplying by the inverse is the same to within a rounding
          const denom = tf.add(tf.mul(tf.sqrt(v), invBiasCorrection2Sqrt), this.eps);
          const pDecayed = decay === 1 ? p : tf.mul(p, decay); // decoupled weight decay: p·(1 - lr·wd)
          return tf.sub(pDecayed, tf.mul(tf.div(m, denom), stepSize)); // p - stepSize · m / denom
        }),
      );
    }
  }

  /** AdamW's first ("m") or second ("v") moment of a parameter, as a variable (zeros before its first update). */
  momentOf(which: "m" | "v", name: string): tf.Variable {
    const p = this.params.get(name);
    if (p === undefined) throw new ConfigError(`AdamW: no parameter "${name}"`);
    return this.moment(which === "m" ? this.m : this.v, name, p);
  }

  /** True once any moment exists (after a step, or a state imported): a GPU copy must start from them. */
  get hasMoments(): boolean {
    return this.m.size > 0;
  }

  /** The moment buffer for a parameter, created as zeros on first use (as PyTorch does). */
  private moment(store: Map<string, tf.Variable>, name: string, p: tf.Variable): tf.Variable {
    let s = store.get(name);
    if (s === undefined) {
      const zeros = tf.zerosLike(p);
      s = tf.variable(zeros, false);
      zeros.dispose(); // the variable holds its own reference to the data
      store.set(name, s);
    }
    return s;
  }

  /** A copy of the whole state as plain arrays (safe to JSON/safetensors-encode), read with `await data()`. */
  async exportState(): Promise<AdamWState> {
    const dump = async (store: Map<string, tf.Variable>) => {
      const out: Record<string, SavedTensor> = {};
      for (const [name, t] of store) out[name] = { shape: t.shape.slice(), data: (await t.data()) as Float32Array };
      return out;
    };
    const [m, v] = [await dump(this.m), await dump(this.v)];
    return {
      step: this.stepCount,
      lr: this.lr,
      betas: [this.betas[0], this.betas[1]],
      eps: this.eps,
      weightDecay: this.weightDecay,
      m,
      v,
    };
  }

  /**
   * Restore a state from `exportState`. The hyperparameters of this optimizer are kept
   * (so a resumed run may change the learning rate); the moments and step count are replaced.
   */
  importState(state: AdamWState): void {
    for (const store of [state.m, state.v]) {
      for (const [name, saved] of Object.entries(store)) {
        const p = this.params.get(name);
        if (p === undefined) throw new ConfigError(`AdamW.importState: state for unknown parameter "${name}"`);
        if (saved.shape.join(",") !== p.shape.join(",")) {
          throw new ConfigError(`AdamW.importState: "${name}" has shape [${saved.shape}], parameter has [${p.shape}]`);
        }
      }
    }
    this.disposeMoments();
    this.stepCount = state.step;
    const load = (src: Record<string, SavedTensor>, store: Map<string, tf.Variable>) => {
      for (const [name, saved] of Object.entries(src)) {
        const t = tf.tensor(saved.data, saved.shape, "float32");
        store.set(name, tf.variable(t, false));
        t.dispose();
      }
    };
    load(state.m, this.m);
    load(state.v, this.v);
  }

  private disposeMoments(): void {
    for (const s of [...this.m.values(), ...this.v.values()]) s.dispose();
    this.m.clear();
    this.v.clear();
  }

  /** Free the moment buffers (the parameters belong to the model). */
  dispose(): void {
    this.disposeMoments();
  }
}
