import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The tiny random-weight CLIP model that test/globalSetup.ts generates before any test runs. */
export const TINY_MODEL_DIR = path.join(root, 'test', '.models', 'tiny');

/** `../shared/clip` beside the checkout: present on developer machines, absent on a user's fresh clone. */
export const SHARED_CLIP_DIR = path.resolve(root, '..', 'shared', 'clip');
