/**
 * The image part of every image-taking input (ClassifyInput, EmbedImagesInput), declared once with its one
 * validation, so a new way to send images is added to every such input at once.
 */
import { Field, InputType } from 'type-graphql';
import { badUserInput } from '../../errors.js';
import type { SubmitImages } from '../../jobs/types.js';

@InputType()
export abstract class ImageInputFields {
  @Field(() => String, { nullable: true, description: 'One image: a data URL or bare base64.' })
  image?: string | null;

  @Field(() => [String], { nullable: true, description: 'Several images (data URLs or bare base64), processed in order.' })
  images?: string[] | null;
}

/** The images of an input, for JobService: exactly one of `image` or `images`, else BAD_USER_INPUT. */
export function submittedImages(input: ImageInputFields): SubmitImages {
  const hasImage = input.image !== undefined && input.image !== null;
  const hasImages = input.images !== undefined && input.images !== null;
  if (hasImage === hasImages) {
    throw badUserInput(`input: expected exactly one of image or images, got ${hasImage ? 'both' : 'neither'}`, hasImage ? 'image,images' : 'image');
  }
  return {
    images: hasImage ? [input.image as string] : (input.images as string[]),
    imagesField: hasImage ? 'image' : 'images',
    batched: hasImages,
  };
}
