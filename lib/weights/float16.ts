/**
 * The 16-bit float formats checkpoints are shared in, widened to float32 for TensorFlow.js.
 *
 *   F16  (IEEE half):  1 sign bit, 5 exponent bits, 10 fraction bits
 *   BF16 (bfloat16):   1 sign bit, 8 exponent bits,  7 fraction bits: the top half of a float32
 *
 * Both widen exactly: every 16-bit value is representable as a float32.
 */

/** IEEE half bits -> float32 values. */
export function f16ToF32(raw: Uint16Array): Float32Array {
  const out = new Float32Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const h = raw[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) out[i] = sign * frac * 2 ** -24; // subnormal: 0.frac × 2^-14
    else if (exp === 31) out[i] = frac ? NaN : sign * Infinity;
    else out[i] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return out;
}

/** bfloat16 bits -> float32 values: shift the 16 bits back into the top of a float32. */
export function bf16ToF32(raw: Uint16Array): Float32Array {
  const bits = new Uint32Array(raw.length);
  for (let i = 0; i < raw.length; i++) bits[i] = raw[i] << 16;
  return new Float32Array(bits.buffer);
}
