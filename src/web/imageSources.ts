/**
 * @file What the page sends as an image: a file (picked, dropped or pasted; sent as a file upload) or an http(s)
 * URL (pasted, typed, or an image dragged from another tab; sent as the URL, which the server fetches).
 */

export type PendingImage = { kind: 'file'; file: File } | { kind: 'url'; url: string };

/** The http(s) URL a string holds, normalised, or null: the page never sends anything else as a URL. */
export function httpUrlOf(text: string): string | null {
  const trimmed = text.trim();
  if (!/^https?:\/\//i.test(trimmed)) return null;
  try {
    return new URL(trimmed).href;
  } catch {
    return null;
  }
}

/**
 * The http(s) URLs of a `text/uri-list` (a drag from another tab carries the image's address there); lines
 * starting with `#` are comments in that format.
 */
export function urlsOfUriList(list: string): string[] {
  return list
    .split(/\r?\n/)
    .filter((line) => !line.startsWith('#'))
    .map(httpUrlOf)
    .filter((url): url is string => url !== null);
}

/** Pasted text as URLs: only when every non-empty line is an http(s) URL (other text is left where it was pasted). */
export function urlsOfPastedText(text: string): string[] {
  const lines = text.split(/\r?\n/).filter((line) => line.trim() !== '');
  const urls = lines.map(httpUrlOf);
  return lines.length > 0 && urls.every((url) => url !== null) ? urls : [];
}

/** The name a card and a chip show: a file's name, or a URL's last path segment (its host when it has none). */
export function displayNameOf(image: PendingImage): string {
  if (image.kind === 'file') return image.file.name;
  const url = new URL(image.url);
  const last = decodeURIComponentSafe(
    url.pathname
      .split('/')
      .filter((part) => part !== '')
      .pop() ?? '',
  );
  return last === '' ? url.host : last;
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
