/**
 * Finds the relative links of Markdown files that do not resolve: a missing file, or an `#anchor` that no heading
 * of the target file produces under GitHub's rules (github-slugger: lower case, punctuation other than `-` and `_`
 * removed, each space a hyphen, repeats suffixed `-1`, `-2`, …). Links inside code are not links.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface BrokenLink {
  /** The Markdown file holding the link, as given. */
  file: string;
  target: string;
  reason: string;
}

const FENCE = /^\s*(```|~~~)/;
const HEADING = /^#{1,6}\s+(.*?)\s*#*\s*$/;
const LINK = /!?\[(?:[^[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g;
const SCHEME = /^[a-z][a-z0-9+.-]*:/i;

/** The file's lines outside fenced code blocks. */
function proseLines(markdown: string): string[] {
  const lines: string[] = [];
  let inFence = false;
  for (const line of markdown.split('\n')) {
    if (FENCE.test(line)) {
      inFence = !inFence;
      continue;
    }
    if (!inFence) lines.push(line);
  }
  return lines;
}

/** Inline code spans removed, so `[a](b)` written as code is not taken for a link. */
function withoutCodeSpans(line: string): string {
  return line.replace(/(`+)[\s\S]*?\1/g, '');
}

/** A heading's text as GitHub renders it: links become their text, code and emphasis marks go. */
function headingText(raw: string): string {
  return raw
    .replace(/!?\[((?:[^[\]]|\[[^\]]*\])*)\]\([^)]*\)/g, '$1')
    .replace(/`/g, '')
    .replace(/\*+/g, '')
    .replace(/<[^>]+>/g, '');
}

/** GitHub's anchor for one heading text (before de-duplication). */
export function githubSlug(text: string): string {
  return headingText(text)
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor a Markdown file's headings produce, repeats numbered as GitHub numbers them. */
export function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of proseLines(markdown)) {
    const match = HEADING.exec(line);
    if (!match) continue;
    const base = githubSlug(match[1] ?? '');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

/** The link targets of a Markdown file (relative and absolute alike), in order. */
export function linkTargets(markdown: string): string[] {
  const targets: string[] = [];
  for (const line of proseLines(markdown)) {
    for (const match of withoutCodeSpans(line).matchAll(LINK)) targets.push(match[1] ?? '');
  }
  return targets;
}

/** The relative links of `file` (a path on disk) that point at no file, or at no heading of a Markdown file. */
export function brokenLinks(file: string): BrokenLink[] {
  const markdown = fs.readFileSync(file, 'utf8');
  const broken: BrokenLink[] = [];
  for (const target of linkTargets(markdown)) {
    if (SCHEME.test(target)) continue;
    const hash = target.indexOf('#');
    const pathPart = decodeURIComponent(hash === -1 ? target : target.slice(0, hash));
    const anchor = hash === -1 ? undefined : decodeURIComponent(target.slice(hash + 1));
    const resolved = pathPart === '' ? file : path.resolve(path.dirname(file), pathPart);
    if (!fs.existsSync(resolved)) {
      broken.push({ file, target, reason: `no file ${path.relative(process.cwd(), resolved)}` });
      continue;
    }
    if (anchor === undefined || !resolved.endsWith('.md')) continue;
    if (!anchorsOf(fs.readFileSync(resolved, 'utf8')).has(anchor)) {
      broken.push({ file, target, reason: `no heading of ${path.basename(resolved)} gives #${anchor}` });
    }
  }
  return broken;
}
