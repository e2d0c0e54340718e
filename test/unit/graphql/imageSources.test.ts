/** jobImagesFrom (src/graphql/imageSources.ts): exactly one of image / images / files, and what each becomes. */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { jobImagesFrom } from '../../../src/graphql/imageSources.js';
import type { FileUpload } from '../../../src/graphql/uploads.js';

function upload(bytes: Buffer | Error): Promise<FileUpload> {
  return Promise.resolve({
    filename: 'x.png',
    mimetype: 'image/png',
    encoding: '7bit',
    createReadStream: () =>
      bytes instanceof Error
        ? new Readable({
            read() {
              this.destroy(bytes);
            },
          })
        : Readable.from([bytes.subarray(0, 3), bytes.subarray(3)]),
  });
}

describe('jobImagesFrom', () => {
  it('should pass strings through as they are', async () => {
    expect(await jobImagesFrom({ image: 'abc' })).toEqual({ images: ['abc'], imagesField: 'image', batched: false });
    expect(await jobImagesFrom({ images: ['a', 'b'] })).toEqual({ images: ['a', 'b'], imagesField: 'images', batched: true });
  });

  it('should read uploads into bytes, in order', async () => {
    const result = await jobImagesFrom({ files: [upload(Buffer.from('first file')), upload(Buffer.from('second'))] });
    expect(result.imagesField).toBe('files');
    expect(result.images.map((bytes) => Buffer.from(bytes as Uint8Array).toString())).toEqual(['first file', 'second']);
  });

  it.each([
    [{}, /got none/, 'image'],
    [{ image: 'a', images: ['b'] }, /got image and images/, 'image,images'],
    [{ image: 'a', files: [] }, /got image and files/, 'image,files'],
  ])('should refuse %j with BAD_USER_INPUT', async (input, message, field) => {
    await expect(jobImagesFrom(input)).rejects.toMatchObject({ code: 'BAD_USER_INPUT', field, message: expect.stringMatching(message) });
  });

  it('should name the file whose upload failed', async () => {
    const interrupted = Object.assign(new Error('Request disconnected during file upload stream parsing.'), { status: 499 });
    await expect(jobImagesFrom({ files: [upload(Buffer.from('ok')), upload(interrupted)] })).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'files[1]',
      message: 'files[1]: the upload was interrupted',
    });
    await expect(jobImagesFrom({ files: [Promise.reject(Object.assign(new Error('File missing in the request.'), { status: 400 }))] })).rejects.toMatchObject({
      field: 'files[0]',
      message: 'files[0]: File missing in the request.',
    });
  });
});
