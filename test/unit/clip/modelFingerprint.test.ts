import { cpSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { modelFingerprint, sampleRanges } from '../../../src/clip/modelFingerprint.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function modelDir(graph: Buffer): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fingerprint-'));
  dirs.push(dir);
  writeFileSync(path.join(dir, 'model.onnx'), graph);
  writeFileSync(path.join(dir, 'tokenizer.json'), '{"model":{}}');
  writeFileSync(path.join(dir, '.lock'), String(Math.random()));
  return dir;
}

function bytes(size: number, seed: number): Buffer {
  const buffer = Buffer.alloc(size);
  for (let i = 0; i < size; i++) buffer[i] = (i * 31 + seed) & 0xff;
  return buffer;
}

describe('modelFingerprint', () => {
  it('should give a copy of the same files elsewhere, written at another time, the same fingerprint', async () => {
    const original = modelDir(bytes(5 * 1024 * 1024, 1));
    const copy = mkdtempSync(path.join(os.tmpdir(), 'fingerprint-copy-'));
    dirs.push(copy);
    cpSync(original, copy, { recursive: true });
    utimesSync(path.join(copy, 'model.onnx'), new Date(2020, 0, 1), new Date(2020, 0, 1));
    expect(await modelFingerprint(copy, 'fp32')).toBe(await modelFingerprint(original, 'fp32'));
  });

  it('should change with a changed byte in a sampled piece, with the precision, and with another file', async () => {
    const graph = bytes(5 * 1024 * 1024, 1);
    const base = await modelFingerprint(modelDir(graph), 'fp32');
    const changed = Buffer.from(graph);
    const at = sampleRanges(changed.length)[5]![0];
    changed[at] = changed[at]! ^ 0xff;
    expect(await modelFingerprint(modelDir(changed), 'fp32')).not.toBe(base);
    expect(await modelFingerprint(modelDir(graph), 'int8')).not.toBe(base);
    const other = modelDir(graph);
    writeFileSync(path.join(other, 'config.json'), '{}');
    expect(await modelFingerprint(other, 'fp32')).not.toBe(base);
  });

  it('should hash a small file whole and sample a large one from head to tail', () => {
    expect(sampleRanges(1000)).toEqual([[0, 1000]]);
    const size = 100 * 1024 * 1024;
    const ranges = sampleRanges(size);
    expect(ranges[0]).toEqual([0, 1024 * 1024]);
    expect(ranges.at(-1)).toEqual([size - 1024 * 1024, 1024 * 1024]);
    for (const [offset, length] of ranges) expect(offset + length).toBeLessThanOrEqual(size);
  });
});
