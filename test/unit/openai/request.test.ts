import { describe, expect, it } from 'vitest';
import { AppError, ErrorCode } from '../../../src/errors.js';
import { parseEmbeddingRequest } from '../../../src/openai/request.js';

function refusal(body: unknown): { field: string | undefined; message: string } {
  try {
    parseEmbeddingRequest(body);
  } catch (error) {
    if (error instanceof AppError && error.code === ErrorCode.BadUserInput)
      return { field: error.field, message: error.message };
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('parseEmbeddingRequest', () => {
  it('should read a string as one text, and a data:image URI as one image', () => {
    expect(parseEmbeddingRequest({ model: 'm', input: 'a cat' })).toEqual({
      model: 'm',
      inputs: [{ kind: 'text', text: 'a cat' }],
      single: true,
      encodingFormat: 'float',
      dimensions: undefined,
    });
    expect(parseEmbeddingRequest({ model: 'm', input: 'data:image/png;base64,AAAA' }).inputs).toEqual([
      { kind: 'image', image: 'data:image/png;base64,AAAA' },
    ]);
  });

  it('should never guess that a URL is an image, unless modality or an {"image"} object says so', () => {
    const url = 'https://example.com/cat.jpg';
    expect(parseEmbeddingRequest({ model: 'm', input: [url] }).inputs).toEqual([{ kind: 'text', text: url }]);
    expect(parseEmbeddingRequest({ model: 'm', input: [url], modality: 'image' }).inputs).toEqual([
      { kind: 'image', image: url },
    ]);
    expect(parseEmbeddingRequest({ model: 'm', input: [{ image: url }] }).inputs).toEqual([
      { kind: 'image', image: url },
    ]);
  });

  it('should take every string as an image with modality "image" and as a text with "text"', () => {
    expect(
      parseEmbeddingRequest({ model: 'm', input: ['iVBORw0K', 'data:image/png;base64,AA'], modality: 'image' }).inputs,
    ).toEqual([
      { kind: 'image', image: 'iVBORw0K' },
      { kind: 'image', image: 'data:image/png;base64,AA' },
    ]);
    expect(parseEmbeddingRequest({ model: 'm', input: ['data:image/png;base64,AA'], modality: 'text' }).inputs).toEqual(
      [{ kind: 'text', text: 'data:image/png;base64,AA' }],
    );
  });

  it('should keep mixed {"text"} and {"image"} objects in order', () => {
    const request = parseEmbeddingRequest({
      model: 'm',
      input: [{ text: 'a' }, { image: 'data:image/png;base64,AA' }, 'b'],
      encoding_format: 'base64',
      dimensions: 512,
      user: 'u',
    });
    expect(request.inputs.map((input) => input.kind)).toEqual(['text', 'image', 'text']);
    expect(request.single).toBe(false);
    expect(request.encodingFormat).toBe('base64');
    expect(request.dimensions).toBe(512);
  });

  it.each([
    [null, undefined],
    [{ input: 'a' }, 'model'],
    [{ model: 'm' }, 'input'],
    [{ model: 'm', input: [] }, 'input'],
    [{ model: 'm', input: [1, 2, 3] }, 'input'],
    [{ model: 'm', input: ['a', [1, 2]] }, 'input[1]'],
    [{ model: 'm', input: ['a', 'b', 'c', { text: 'd', image: 'e' }] }, 'input[3]'],
    [{ model: 'm', input: ['a', {}] }, 'input[1]'],
    [{ model: 'm', input: [{ image: 5 }] }, 'input[0]'],
    [{ model: 'm', input: [true] }, 'input[0]'],
    [{ model: 'm', input: 'a', encoding_format: 'int8' }, 'encoding_format'],
    [{ model: 'm', input: 'a', modality: 'audio' }, 'modality'],
    [{ model: 'm', input: 'a', dimensions: 0 }, 'dimensions'],
    [{ model: 'm', input: 'a', dimensions: '512' }, 'dimensions'],
  ])('should refuse %j naming %s', (body, field) => {
    expect(refusal(body).field).toBe(field);
  });

  it('should say that token arrays are not supported', () => {
    expect(refusal({ model: 'm', input: [[1, 2]] }).message).toContain('token arrays are not supported');
  });
});
