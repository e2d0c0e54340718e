import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { anchorsOf, brokenLinks, githubSlug, linkTargets } from '../../utils/markdownLinks.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const DOCS = path.join(ROOT, 'docs');
const MARKDOWN_FILES = [
  path.join(ROOT, 'README.md'),
  ...fs
    .readdirSync(DOCS, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => path.join(DOCS, f)),
];

describe('githubSlug', () => {
  it.each([
    ['Deployment: several APIs and workers on Redis', 'deployment-several-apis-and-workers-on-redis'],
    ['GPUs (execution providers)', 'gpus-execution-providers'],
    ['`CLIP_MODEL`', 'clip_model'],
    ['Where the milliseconds go: request → pixel_values', 'where-the-milliseconds-go-request--pixel_values'],
    ['[REST](rest.md) and **GraphQL**', 'rest-and-graphql'],
    ['Café, 2 × faster', 'café-2--faster'],
  ])('should turn %j into #%s', (heading, slug) => {
    expect(githubSlug(heading)).toBe(slug);
  });
});

describe('anchorsOf', () => {
  it('should number repeated headings and ignore lines in code blocks', () => {
    const anchors = anchorsOf('# Uploads\n\n## Uploads\n\n```sh\n# not a heading\n```\n### Uploads\n');
    expect([...anchors]).toEqual(['uploads', 'uploads-1', 'uploads-2']);
  });
});

describe('linkTargets', () => {
  it('should find links and images but not links written as code', () => {
    const markdown =
      'See [a](a.md#x) and ![shot](img.png "title"), not `[b](b.md)`.\n```\n[c](c.md)\n```\n[d](https://example.com)';
    expect(linkTargets(markdown)).toEqual(['a.md#x', 'img.png', 'https://example.com']);
  });
});

describe('brokenLinks', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'links-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('should report a missing file and a missing anchor, and accept good ones', () => {
    fs.writeFileSync(path.join(dir, 'other.md'), '# Other\n\n## Good part\n');
    fs.writeFileSync(
      path.join(dir, 'index.md'),
      '# Index\n\n[ok](other.md#good-part) [self](#index) [gone](missing.md) [bad anchor](other.md#bad-part) [web](https://x.test/#y)\n',
    );
    const broken = brokenLinks(path.join(dir, 'index.md')).map((link) => link.target);
    expect(broken).toEqual(['missing.md', 'other.md#bad-part']);
  });
});

describe('README.md and docs/*.md', () => {
  it.each(MARKDOWN_FILES.map((file) => [path.relative(ROOT, file), file]))(
    '%s: every relative link and #anchor should resolve',
    (_, file) => {
      const broken = brokenLinks(file).map((link) => `${link.target} (${link.reason})`);
      expect(broken, `broken links in ${path.relative(ROOT, file)}`).toEqual([]);
    },
  );
});
