/**
 * The image part of every image-taking input (ClassifyInput, EmbedImagesInput), declared once, so a new way to
 * send images is added to every such input at once. Its one validation is `jobImagesFrom` (../imageSources.ts).
 */
import { Field, InputType } from 'type-graphql';
import { FilesField } from '../imageSources.js';
import type { UploadedFile } from '../uploads.js';

@InputType()
export abstract class ImageInputFields {
  @Field(() => String, {
    nullable: true,
    description: 'One image: a data URL, bare base64 or an http(s) URL the server fetches (public addresses only).',
  })
  image?: string | null;

  @Field(() => [String], {
    nullable: true,
    description: 'Several images (data URLs, bare base64 or http(s) URLs), processed in order.',
  })
  images?: string[] | null;

  @FilesField()
  files?: UploadedFile[] | null;
}
