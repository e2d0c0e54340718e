/**
 * Seeded pseudo-random numbers for the test-model generator.
 *
 * Every weight tensor draws from its own stream, keyed by (seed, tensor name), so a tensor's values
 * do not depend on the order tensors are generated in or on which other tensors a preset has.
 * The arithmetic is 32-bit integer math plus V8's fdlibm-based Math.log/Math.cos, so the same seed
 * gives bit-identical weights on every machine.
 */

/** A deterministic source of uniform and normal variates. */
export interface Rng {
  /** Uniform in (0, 1): never exactly 0, so it is safe under `Math.log`. */
  uniform(): number;
  /** Standard normal (mean 0, std 1), by the Box–Muller transform. */
  normal(): number;
}

/** FNV-1a over the UTF-16 code units of `text`, mixed with `seed`: a 32-bit stream id. */
function hashStream(seed: number, text: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** splitmix32: spreads one 32-bit seed into well-mixed state words. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * Creates the stream `name` of generator seed `seed`.
 * The core is sfc32 (small fast chaotic, PractRand-clean), which is plenty for weight init.
 */
export function createRng(seed: number, name: string): Rng {
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new TypeError(`Expected seed to be a non-negative integer, got ${seed}`);
  // Fold the high bits in too, so seeds 0 and 2^32 differ.
  const mixer = { s: hashStream((seed ^ Math.floor(seed / 2 ** 32)) >>> 0, name) };
  let a = splitmix32(mixer);
  let b = splitmix32(mixer);
  let c = splitmix32(mixer);
  let d = splitmix32(mixer);
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  let spare: number | undefined;
  const uniform = (): number => (next() + 0.5) / 4294967296;
  return {
    uniform,
    normal(): number {
      if (spare !== undefined) {
        const value = spare;
        spare = undefined;
        return value;
      }
      const radius = Math.sqrt(-2 * Math.log(uniform()));
      const angle = 2 * Math.PI * uniform();
      spare = radius * Math.sin(angle);
      return radius * Math.cos(angle);
    },
  };
}

/** Fills `target` with normal(mean, std) draws from `rng`, in place; returns `target`. */
export function fillNormal(target: Float32Array, rng: Rng, std: number, mean = 0): Float32Array {
  for (let i = 0; i < target.length; i++) target[i] = mean + std * rng.normal();
  return target;
}

/** mulberry32: a small seeded generator of uniforms in [0, 1), for benchmark images and randomised test cases. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
