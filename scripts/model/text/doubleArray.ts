/**
 * @file A darts-clone double-array trie builder: the trie format SentencePiece stores in a
 * `precompiled_charsmap` (and that `src/clip/text/precompiled.ts`, Rust's spm_precompiled and SentencePiece read).
 *
 * Unit layout (32 bits): bits 0–7 the label of the edge into the unit, bit 8 "has a leaf child", bits 10–31 the
 * XOR offset to the unit's children block (bit 9, the ×256 extension, is never needed for arrays this small).
 * A unit's children sit at `pos ^ offset ^ label`; its value sits at `pos ^ offset` (the label-0 child), stored
 * with bit 31 set so it never matches a byte label.
 */

interface TrieNode {
  children: Map<number, TrieNode>;
  value: number | undefined;
}

function newNode(): TrieNode {
  return { children: new Map(), value: undefined };
}

/** Offsets this builder can encode without darts-clone's extension bit. */
const MAX_OFFSET = (1 << 21) - 1;
const MAX_VALUE = 0x7fffffff;

/**
 * Builds the units of a double-array trie over byte-string keys. Deterministic: the same entries in any order
 * give the same array. Keys must be non-empty and free of NUL bytes (the lookup stops at NUL).
 */
export function buildDoubleArray(entries: ReadonlyArray<readonly [Uint8Array, number]>): Uint32Array {
  const root = newNode();
  for (const [key, value] of entries) {
    if (key.length === 0 || key.includes(0)) throw new RangeError('expected non-empty keys without NUL bytes');
    if (!Number.isInteger(value) || value < 0 || value > MAX_VALUE)
      throw new RangeError(`expected values in 0…${MAX_VALUE}, got ${value}`);
    let node = root;
    for (const byte of key) {
      let child = node.children.get(byte);
      if (child === undefined) {
        child = newNode();
        node.children.set(byte, child);
      }
      node = child;
    }
    if (node.value !== undefined && node.value !== value) throw new RangeError('expected each key once');
    node.value = value;
  }

  const units: number[] = [0];
  const used: boolean[] = [true];
  const usedBases = new Set<number>();
  let firstFree = 1;
  const isFree = (pos: number): boolean => pos !== 0 && used[pos] !== true;

  // Breadth-first, children in byte order: the layout depends only on the key set.
  const queue: Array<{ node: TrieNode; pos: number; label: number }> = [{ node: root, pos: 0, label: 0 }];
  for (let head = 0; head < queue.length; head++) {
    const { node, pos, label } = queue[head] as (typeof queue)[number];
    const labels = [...node.children.keys()].sort((a, b) => a - b);
    const hasLeaf = node.value !== undefined;
    if (hasLeaf) labels.unshift(0);
    if (labels.length === 0) {
      units[pos] = label;
      continue;
    }
    while (!isFree(firstFree)) firstFree++;
    let base: number;
    for (let candidate = firstFree; ; candidate++) {
      if (!isFree(candidate)) continue;
      const b = candidate ^ (labels[0] as number);
      if (usedBases.has(b) || !labels.every((l) => isFree(b ^ l))) continue;
      base = b;
      break;
    }
    const offset = pos ^ base;
    if (offset > MAX_OFFSET) throw new RangeError('trie too large for this builder');
    usedBases.add(base);
    units[pos] = ((offset << 10) | (hasLeaf ? 1 << 8 : 0) | label) >>> 0;
    for (const l of labels) used[base ^ l] = true;
    if (hasLeaf) units[base] = ((node.value as number) | 0x80000000) >>> 0;
    for (const [byte, child] of [...node.children].sort(([a], [b]) => a - b))
      queue.push({ node: child, pos: base ^ byte, label: byte });
  }
  const array = new Uint32Array(units.length);
  for (let i = 0; i < units.length; i++) array[i] = units[i] ?? 0;
  return array;
}
