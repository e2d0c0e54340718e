/** jobImagesFrom (src/graphql/imageSources.ts): exactly one of image / images / files, and what each becomes. */
import { describe, expect, it } from 'vitest';
import { jobImagesFrom } from '../../../src/graphql/imageSources.js';
import { MultipartFailure } from '../../../src/graphql/multipart.js';
import type { ReceivedFile } from '../../../src/graphql/uploads.js';

function upload(bytes: Buffer | Error, requestReceived: Promise<void> = Promise.resolve()): Promise<ReceivedFile> {
  const content = bytes instanceof Error ? Promise.reject(bytes) : Promise.resolve(bytes);
  content.catch(() => undefined);
  requestReceived.catch(() => undefined);
  return Promise.resolve({
    filename: 'x.png',
    mimetype: 'image/png',
    encoding: '7bit',
    bytes: content,
    requestReceived,
  });
}

describe('jobImagesFrom', () => {
  it('should pass strings through as they are', async () => {
    expect(await jobImagesFrom({ image: 'abc' })).toEqual({ images: ['abc'], imagesField: 'image', batched: false });
    expect(await jobImagesFrom({ images: ['a', 'b'] })).toEqual({
      images: ['a', 'b'],
      imagesField: 'images',
      batched: true,
    });
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
    await expect(jobImagesFrom(input)).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
      field,
      message: expect.stringMatching(message),
    });
  });

  it('should name the file whose upload failed', async () => {
    const interrupted = new MultipartFailure('interrupted', 'Request disconnected during file upload stream parsing.');
    await expect(jobImagesFrom({ files: [upload(Buffer.from('ok')), upload(interrupted)] })).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'files[1]',
      message: 'files[1]: the upload was interrupted',
    });
    await expect(
      jobImagesFrom({ files: [Promise.reject(new MultipartFailure('fileMissing', 'File missing in the request.'))] }),
    ).rejects.toMatchObject({
      field: 'files[0]',
      message: 'files[0]: File missing in the request.',
    });
    await expect(
      jobImagesFrom({ files: [upload(new MultipartFailure('fileTooLarge', 'too large', 100))] }),
    ).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
      message: 'files[0]: image is over the limit of 100 bytes (MAX_IMAGE_BYTES)',
    });
  });

  it('should refuse files whose request went over MAX_BODY_BYTES after them', async () => {
    const overLimit = Promise.reject(new MultipartFailure('bodyTooLarge', 'too large', 1000));
    await expect(jobImagesFrom({ files: [upload(Buffer.from('ok'), overLimit)] })).rejects.toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      message: 'Request body is larger than the limit of 1000 bytes (MAX_BODY_BYTES)',
    });
  });
});
