/**
 * A small seeded random number generator (mulberry32), so that shuffling,
 * dropout masks and sampling are reproducible for a given seed, the way
 * `torch.manual_seed(123)` makes the book's runs reproducible.
 *
 * The state is one 32-bit integer, so it can be saved in a checkpoint and
 * restored exactly (`state` / `Rng.fromState`).
 */
export class Rng {
  private s: number;

  constructor(seed: number) {
    // mix the seed so that nearby seeds (1, 2, 3…) start far apart
    this.s = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) >>> 0) || 1;
  }

  static fromState(state: number): Rng {
    const r = new Rng(0);
    r.s = state >>> 0;
    return r;
  }

  /** The whole state: pass it to `Rng.fromState` to continue the same stream. */
  get state(): number {
    return this.s;
  }

  /** Uniform float in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** A 32-bit seed for another generator (e.g. `tf.randomUniform(..., seed)`). */
  seed(): number {
    return Math.floor(this.next() * 2147483647);
  }

  /** Fisher–Yates shuffle, in place; returns the same array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }

  /** A shuffled copy of 0..n-1. */
  permutation(n: number): number[] {
    return this.shuffle(Array.from({ length: n }, (_, i) => i));
  }
}
