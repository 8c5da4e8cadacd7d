// Kernels the engine adds to a backend, by name. The library above calls them through
// tf.engine().runKernel when the active backend has them, and falls back to plain tf ops otherwise.

/** The gradient of the fused softmax cross-entropy, (softmax - onehot(labels)) * scale (lib/train/fused-loss.ts). */
export const XENT_GRAD_KERNEL = "CourseSoftmaxXentGrad";
