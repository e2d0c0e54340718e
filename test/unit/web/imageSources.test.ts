import { describe, expect, it } from 'vitest';
import { displayNameOf, httpUrlOf, urlsOfPastedText, urlsOfUriList } from '../../../src/web/imageSources.js';

describe('the page’s image sources', () => {
  it('should take only http(s) URLs', () => {
    expect(httpUrlOf('  https://example.com/a b.png ')).toBe('https://example.com/a%20b.png');
    expect(httpUrlOf('HTTP://example.com/x')).toBe('http://example.com/x');
    expect(httpUrlOf('ftp://example.com/x')).toBeNull();
    expect(httpUrlOf('javascript:alert(1)')).toBeNull();
    expect(httpUrlOf('a cat')).toBeNull();
  });

  it('should read a text/uri-list, skipping comments and other schemes', () => {
    expect(urlsOfUriList('# dragged\r\nhttps://example.com/cat.jpg\r\nfile:///tmp/x.png\r\n')).toEqual([
      'https://example.com/cat.jpg',
    ]);
  });

  it('should take pasted text as URLs only when every line is one', () => {
    expect(urlsOfPastedText('https://a.example/1.png\nhttps://b.example/2.png\n')).toEqual([
      'https://a.example/1.png',
      'https://b.example/2.png',
    ]);
    expect(urlsOfPastedText('look at https://a.example/1.png')).toEqual([]);
    expect(urlsOfPastedText('')).toEqual([]);
  });

  it('should name a URL by its last path segment, or its host', () => {
    expect(displayNameOf({ kind: 'url', url: 'https://example.com/photos/cat%20one.jpg?size=large' })).toBe(
      'cat one.jpg',
    );
    expect(displayNameOf({ kind: 'url', url: 'https://example.com/' })).toBe('example.com');
  });
});
