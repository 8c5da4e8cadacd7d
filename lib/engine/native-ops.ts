/**
 * TensorFlow's own ops that TF.js does not offer, reached through the tfjs-node binding (the native engine):
 * resource variables and the fused in-place Adam update (what lets AdamW update a parameter and its moments in
 * one kernel instead of fourteen TF.js ops that each allocate a new full-size tensor: lib/train/adamw-fused.ts),
 * and the fused softmax cross-entropy with its gradient (lib/train/fused-loss.ts).
 *
 * The binding runs any op of libtensorflow's by name (`executeSingleOutput`, `executeMultipleOutputs`, as
 * its own TensorBoard code does): `VarHandleOp` makes a variable and returns its resource handle (a tensor
 * TF.js sees as dtype "string"), `AssignVariableOp` / `ReadVariableOp` write and read it, and the
 * `ResourceApply*` kernels update it where it lies. A read shares the variable's buffer; a later update
 * finds it shared and copies it first (TensorFlow's copy-on-write), so a value TF.js holds never changes
 * under it.
 */
import * as tf from "@tensorflow/tfjs";
import { ConfigError } from "../core/errors";

interface OpAttr {
  name: string;
  type: number;
  value: unknown;
}

/** The parts of tfjs-node's NodeJSKernelBackend used here. */
interface NativeBackend {
  binding: { TF_ATTR_STRING: number; TF_ATTR_TYPE: number; TF_ATTR_SHAPE: number; TF_ATTR_BOOL: number; TF_ATTR_INT: number; TF_FLOAT: number; TF_INT32: number };
  executeSingleOutput(name: string, attrs: OpAttr[], inputs: tf.Tensor[]): tf.Tensor;
  executeMultipleOutputs(name: string, attrs: OpAttr[], inputs: tf.Tensor[], numOutputs: number): tf.Tensor[];
}

/** The native backend, or null on any other engine (or a tfjs-node without these methods). */
export function nativeBackend(): NativeBackend | null {
  if (tf.getBackend() !== "tensorflow") return null;
  const be = tf.backend() as unknown as Partial<NativeBackend>;
  const ok = be.binding !== undefined && typeof be.executeSingleOutput === "function" && typeof be.executeMultipleOutputs === "function";
  return ok ? (be as NativeBackend) : null;
}

function backend(): NativeBackend {
  const be = nativeBackend();
  if (be === null) throw new ConfigError(`TensorFlow resource variables need the native engine (tfjs-node); the engine is ${tf.getBackend()}`);
  return be;
}

let created = 0;

/** A float32 variable of libtensorflow's, alive until `dispose`. */
export class NativeVariable {
  /** the resource handle (a scalar TF.js tensor of dtype "string") */
  readonly handle: tf.Tensor;
  readonly shape: number[];

  /** A new variable holding a copy of `value` (float32). */
  constructor(value: tf.Tensor) {
    const be = backend();
    const b = be.binding;
    this.shape = value.shape.slice();
    // one process-wide resource manager: every variable needs a name of its own
    // kept: the variable outlives whatever tidy scope makes it (an optimizer's first step, inside a backward pass)
    this.handle = tf.keep(be.executeSingleOutput(
      "VarHandleOp",
      [
        { name: "container", type: b.TF_ATTR_STRING, value: "" },
        { name: "shared_name", type: b.TF_ATTR_STRING, value: `course_variable_${process.pid}_${created++}` },
        { name: "dtype", type: b.TF_ATTR_TYPE, value: b.TF_FLOAT },
        { name: "shape", type: b.TF_ATTR_SHAPE, value: this.shape },
      ],
      [],
    ));
    this.write(value);
  }

  /** Replace the value (a copy of `value`'s data). */
  write(value: tf.Tensor): void {
    const be = backend();
    const b = be.binding;
    if (value.dtype !== "float32" || !tf.util.arraysEqual(value.shape, this.shape)) {
      throw new ConfigError(`NativeVariable.write: expected float32 [${this.shape}], got ${value.dtype} [${value.shape}]`);
    }
    be.executeMultipleOutputs("AssignVariableOp", [{ name: "dtype", type: b.TF_ATTR_TYPE, value: b.TF_FLOAT }, { name: "validate_shape", type: b.TF_ATTR_BOOL, value: true }], [this.handle, value], 0);
  }

  /** The current value, as a new TF.js tensor sharing the variable's buffer (the caller disposes it). */
  read(): tf.Tensor {
    const be = backend();
    return be.executeSingleOutput("ReadVariableOp", [{ name: "dtype", type: be.binding.TF_ATTR_TYPE, value: be.binding.TF_FLOAT }], [this.handle]);
  }

  /** Free the variable in libtensorflow's resource manager, and its handle. */
  dispose(): void {
    if (this.handle.isDisposed) return;
    const be = nativeBackend();
    if (be !== null) {
      be.executeMultipleOutputs("DestroyResourceOp", [{ name: "ignore_lookup_error", type: be.binding.TF_ATTR_BOOL, value: true }], [this.handle], 0);
    }
    this.handle.dispose();
  }
}

/** Run a `ResourceApply*` training op (no outputs) with float32 `T` and the given extra attributes. */
function applyOp(name: string, inputs: tf.Tensor[], flags: Record<string, boolean>): void {
  const be = backend();
  const b = be.binding;
  const attrs: OpAttr[] = [{ name: "T", type: b.TF_ATTR_TYPE, value: b.TF_FLOAT }];
  for (const [flag, value] of Object.entries(flags)) attrs.push({ name: flag, type: b.TF_ATTR_BOOL, value });
  be.executeMultipleOutputs(name, attrs, inputs, 0);
}

/** Scalars of TensorFlow's Adam update (`ResourceApplyAdam`; see adamw-fused.ts for how they map to PyTorch's). */
export interface AdamScalars {
  beta1Power: number;
  beta2Power: number;
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

/**
 * TensorFlow's Adam update of `v` with moments `m`, `s` and gradient `g`, all in place, in one pass:
 *   lr_t = lr · √(1 − beta2Power) / (1 − beta1Power)
 *   m ← m + (g − m)(1 − β1);   s ← s + (g² − s)(1 − β2);   v ← v − lr_t · m / (√s + epsilon)
 */
export function applyAdam(v: NativeVariable, m: NativeVariable, s: NativeVariable, k: AdamScalars, g: tf.Tensor): void {
  const scalars = [k.beta1Power, k.beta2Power, k.lr, k.beta1, k.beta2, k.epsilon].map((x) => tf.scalar(x));
  try {
    applyOp("ResourceApplyAdam", [v.handle, m.handle, s.handle, ...scalars, g], { use_locking: false, use_nesterov: false });
  } finally {
    tf.dispose(scalars);
  }
}

/** Whether the fused loss uses TensorFlow's own softmax cross-entropy kernel on the native engine (`COURSE_NATIVE_XENT=0`: TF.js ops). */
export const NATIVE_XENT = { on: process.env.COURSE_NATIVE_XENT !== "0" };

/**
 * TensorFlow's `SparseSoftmaxCrossEntropyWithLogits` on the native engine: for logits (R, V) and labels (R,),
 * each row's loss logsumexp(x) − x[label] (R,) and its gradient softmax(x) − onehot(label) (R, V), in one pass
 * over the logits (TF.js ops take a softmax, a max, a log, a gather, a one-hot, a cast, a subtraction: seven).
 * Null on any other engine, or when switched off.
 */
export function nativeSoftmaxXent(logits: tf.Tensor2D, labels: tf.Tensor1D): { loss: tf.Tensor1D; grad: tf.Tensor2D } | null {
  const be = nativeBackend();
  if (be === null || !NATIVE_XENT.on) return null;
  const b = be.binding;
  const [loss, grad] = be.executeMultipleOutputs(
    "SparseSoftmaxCrossEntropyWithLogits",
    [
      { name: "T", type: b.TF_ATTR_TYPE, value: b.TF_FLOAT },
      { name: "Tlabels", type: b.TF_ATTR_TYPE, value: b.TF_INT32 },
    ],
    [logits, labels],
    2,
  );
  return { loss: loss as tf.Tensor1D, grad: grad as tf.Tensor2D };
}

/**
 * libtensorflow's ops called one by one, straight through the binding: what TF.js's own kernels on the native
 * engine end up calling, without what they do around it (a kernel lookup, a fresh int32 tensor for every axis
 * and shape, a cast before each mean). Measured on gpt2-small's shapes on this project's 2-core machine: ~4–5 µs
 * an op against TF.js's 9–18 µs; generating one token runs ~560 such small ops (lib/model/native-decode.ts).
 * The ops and their order are TF.js's own (`Add`, `Mul`, `BatchMatMulV2`, …), so the numbers are the same.
 * The axis and shape tensors are made once and kept until `dispose`.
 */
export class NativeOps {
  private readonly be: NativeBackend;
  private readonly float: OpAttr[];
  private readonly consts = new Map<string, tf.Tensor>();
  private readonly intType: number;

  constructor() {
    this.be = backend();
    const b = this.be.binding;
    this.intType = b.TF_INT32;
    this.float = [{ name: "T", type: b.TF_ATTR_TYPE, value: b.TF_FLOAT }];
  }

  private bool(name: string, value: boolean): OpAttr {
    return { name, type: this.be.binding.TF_ATTR_BOOL, value };
  }

  private int(name: string, value: number): OpAttr {
    return { name, type: this.be.binding.TF_ATTR_INT, value };
  }

  private typeAttr(name: string, value: number): OpAttr {
    return { name, type: this.be.binding.TF_ATTR_TYPE, value };
  }

  /** A kept constant, made on first use. */
  private constant(key: string, make: () => tf.Tensor): tf.Tensor {
    let t = this.consts.get(key);
    if (t === undefined) {
      t = tf.keep(make());
      this.consts.set(key, t);
    }
    return t;
  }

  /** A float32 scalar, kept (the scalar TF.js makes from a number in `tf.mul(0.5, x)`: the same value). */
  scalar(value: number): tf.Tensor {
    return this.constant(`s${value}`, () => tf.scalar(value, "float32"));
  }

  private ints(values: number[]): tf.Tensor {
    return this.constant(`i${values.join(",")}`, () => tf.tensor1d(values, "int32"));
  }

  private binary(name: string, a: tf.Tensor, b: tf.Tensor): tf.Tensor {
    return this.be.executeSingleOutput(name, this.float, [a, b]);
  }

  add(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
    return this.binary("Add", a, b);
  }
  sub(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
    return this.binary("Sub", a, b);
  }
  mul(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
    return this.binary("Mul", a, b);
  }
  div(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
    return this.binary("RealDiv", a, b);
  }
  square(x: tf.Tensor): tf.Tensor {
    return this.be.executeSingleOutput("Square", this.float, [x]);
  }
  sqrt(x: tf.Tensor): tf.Tensor {
    return this.be.executeSingleOutput("Sqrt", this.float, [x]);
  }
  tanh(x: tf.Tensor): tf.Tensor {
    return this.be.executeSingleOutput("Tanh", this.float, [x]);
  }
  /** softmax over the last axis */
  softmax(x: tf.Tensor): tf.Tensor {
    return this.be.executeSingleOutput("Softmax", this.float, [x]);
  }

  /** mean over the last axis, kept as an axis of 1 */
  meanLast(x: tf.Tensor): tf.Tensor {
    const attrs = [...this.float, this.typeAttr("Tidx", this.intType), this.bool("keep_dims", true)];
    return this.be.executeSingleOutput("Mean", attrs, [x, this.ints([x.rank - 1])]);
  }

  /** a @ b (or a @ bᵀ), batch axes broadcast: TF.js's tf.matMul on this engine */
  matMul(a: tf.Tensor, b: tf.Tensor, transposeB = false): tf.Tensor {
    return this.be.executeSingleOutput("BatchMatMulV2", [...this.float, this.bool("adj_x", false), this.bool("adj_y", transposeB)], [a, b]);
  }

  /**
   * a (M, K) @ b (K, N), both 2-D, as TensorFlow's `MatMul` (not TF.js's `BatchMatMulV2`): for one row times a
   * weight matrix 20–25% faster on this machine (768 × 3072: 233–237 µs against 303–327), the same products up
   * to float32 rounding.
   */
  matMul2d(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
    return this.be.executeSingleOutput("MatMul", [...this.float, this.bool("transpose_a", false), this.bool("transpose_b", false)], [a, b]);
  }

  /**
   * a @ b (or a @ bᵀ), batch axes broadcast, as TensorFlow's `BatchMatMulV3`: the same product, but a kernel that
   * oneDNN's rewrite of eager ops leaves to Eigen, so no set-up per new shape (attention's key count grows every
   * token: (1, 12, 1, 64) @ (1, 12, 64, n) ~15 µs a call against ~95 for BatchMatMulV2). For weights no faster
   * in place than MatMul, and for the head's 768 × 50257 slower (5.4 ms against 3.6).
   */
  matMulV3(a: tf.Tensor, b: tf.Tensor, transposeB = false): tf.Tensor {
    const types = ["Ta", "Tb", "Tout"].map((name) => this.typeAttr(name, this.be.binding.TF_FLOAT));
    return this.be.executeSingleOutput("BatchMatMulV3", [...types, this.bool("adj_x", false), this.bool("adj_y", transposeB)], [a, b]);
  }

  reshape(x: tf.Tensor, shape: number[]): tf.Tensor {
    return this.be.executeSingleOutput("Reshape", [...this.float, this.typeAttr("Tshape", this.intType)], [x, this.ints(shape)]);
  }

  /** `n` equal parts of x along `axis` */
  split(x: tf.Tensor, n: number, axis: number): tf.Tensor[] {
    return this.be.executeMultipleOutputs("Split", [...this.float, this.int("num_split", n)], [this.constant(`a${axis}`, () => tf.scalar(axis, "int32")), x], n);
  }

  /**
   * Rows `rows` of x (R, ...) set to v (len(rows), ...) in x's own buffer (TensorFlow's `InplaceUpdate`, which
   * writes where x lies, ~8 µs): every tensor sharing that buffer sees it. Only for a buffer the caller owns.
   */
  inplaceUpdate(x: tf.Tensor, rows: tf.Tensor, v: tf.Tensor): void {
    this.be.executeSingleOutput("InplaceUpdate", this.float, [x, rows, v]).dispose(); // the output is x's buffer again
  }

  /** the tensors joined along `axis` */
  concat(xs: tf.Tensor[], axis: number): tf.Tensor {
    const attrs = [...this.float, this.int("N", xs.length), this.typeAttr("Tidx", this.intType)];
    return this.be.executeSingleOutput("ConcatV2", attrs, [...xs, this.constant(`a${axis}`, () => tf.scalar(axis, "int32"))]);
  }

  /** Free the kept constants. */
  dispose(): void {
    for (const t of this.consts.values()) t.dispose();
    this.consts.clear();
  }
}
