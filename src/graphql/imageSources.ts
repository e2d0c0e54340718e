/**
 * @file The images of a job-creating input: exactly one of `image` (one data URL or base64 string), `images`
 * (several) or `files` (file uploads, the GraphQL multipart request spec). Shared by every mutation that takes
 * images: each input type declares the three fields (`files` with {@link FilesField}) and its resolver passes
 * `...(await jobImagesFrom(input))` to JobService.
 */
import { Field } from 'type-graphql';
import { badUserInput } from '../errors.js';
import type { SubmitImages } from '../jobs/index.js';
import { GraphQLUpload, readUploadedImages, type UploadedFile } from './uploads.js';

/**
 * The `files: [Upload!]` field of a job-creating input type, the same on every one:
 *
 *     @FilesField() files?: UploadedFile[] | null;
 */
export function FilesField(): PropertyDecorator {
  return Field(() => [GraphQLUpload], {
    nullable: true,
    description:
      'Several images as file uploads (GraphQL multipart request; send the `apollo-require-preflight` header), in order. No base64.',
  });
}

/** The three image fields, as type-graphql hands them to a resolver. */
export interface ImageSourceFields {
  image?: string | null | undefined;
  images?: string[] | null | undefined;
  files?: UploadedFile[] | null | undefined;
}

const SOURCE_FIELDS = ['image', 'images', 'files'] as const;

/**
 * Picks the one image field given and turns it into a submission's images: strings as they are (JobService
 * decodes them), uploads read into bytes (no base64 round trip). Throws AppError BAD_USER_INPUT when none or
 * more than one is given, and what {@link readUploadedImages} throws for a file.
 */
export async function jobImagesFrom(input: ImageSourceFields): Promise<SubmitImages> {
  const given = SOURCE_FIELDS.filter((name) => input[name] !== undefined && input[name] !== null);
  if (given.length !== 1) {
    throw badUserInput(
      `input: expected exactly one of image, images or files, got ${given.length === 0 ? 'none' : given.join(' and ')}`,
      given.length === 0 ? 'image' : given.join(','),
    );
  }
  if (input.image !== undefined && input.image !== null)
    return { images: [input.image], imagesField: 'image', batched: false };
  if (input.images !== undefined && input.images !== null)
    return { images: input.images, imagesField: 'images', batched: true };
  return { images: await readUploadedImages(input.files ?? [], 'files'), imagesField: 'files', batched: true };
}
