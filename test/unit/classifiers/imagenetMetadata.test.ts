/**
 * The presets' lists are open_clip's exactly: test/fixtures/open_clip/zero_shot_metadata.py is open_clip's
 * src/open_clip/zero_shot_metadata.py as published (MIT), parsed here and compared string by string.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  IMAGENET_CLASSNAMES,
  OPENAI_IMAGENET_TEMPLATES,
  SIMPLE_IMAGENET_TEMPLATES,
} from '../../../src/classifiers/imagenetMetadata.js';
import { PRESETS } from '../../../src/classifiers/index.js';

const source = readFileSync(new URL('../../fixtures/open_clip/zero_shot_metadata.py', import.meta.url), 'utf8');

/** The body of `NAME = ( … )` in the Python file. */
function tuple(name: string): string {
  const start = source.indexOf(`${name} = (`);
  expect(start).toBeGreaterThanOrEqual(0);
  return source.slice(start, source.indexOf('\n)', start));
}

/** `lambda c: f'… {c} …'` → `… {} …`, in order. */
function templates(name: string): string[] {
  return [...tuple(name).matchAll(/lambda c: f'([^']*)'/g)].map((match) => match[1]!.replace('{c}', '{}'));
}

describe("the ImageNet presets' lists", () => {
  it("should hold open_clip's 1,000 class names exactly, in order", () => {
    const names = [...tuple('IMAGENET_CLASSNAMES').matchAll(/"([^"]*)"/g)].map((match) => match[1]);
    expect(names).toHaveLength(1000);
    expect(IMAGENET_CLASSNAMES).toEqual(names);
  });

  it("should hold OpenAI's 80 templates and open_clip's simple ones exactly, with {} for the class", () => {
    const openai = templates('OPENAI_IMAGENET_TEMPLATES');
    expect(openai).toHaveLength(80);
    expect(OPENAI_IMAGENET_TEMPLATES).toEqual(openai);
    // open_clip's SIMPLE_IMAGENET_TEMPLATES has 7 entries (not 18): the lists here follow the source.
    const simple = templates('SIMPLE_IMAGENET_TEMPLATES');
    expect(simple).toHaveLength(7);
    expect(SIMPLE_IMAGENET_TEMPLATES).toEqual(simple);
    for (const template of [...openai, ...simple]) expect(template.split('{}')).toHaveLength(2);
  });

  it('should offer imagenet-1k with the 80 templates and imagenet-1k-simple with the simple ones', () => {
    const byId = new Map(PRESETS.map((preset) => [preset.id, preset]));
    expect(byId.get('imagenet-1k')?.templates).toBe(OPENAI_IMAGENET_TEMPLATES);
    expect(byId.get('imagenet-1k-simple')?.templates).toBe(SIMPLE_IMAGENET_TEMPLATES);
    expect(byId.get('imagenet-1k')?.classes).toBe(IMAGENET_CLASSNAMES);
  });
});
