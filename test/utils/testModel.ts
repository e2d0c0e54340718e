import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The tiny random-weight CLIP model that test/setup/models.ts generates before any test runs. */
export const TINY_MODEL_DIR = path.join(root, 'test', '.models', 'tiny');

/** One generated immich-layout model the tests use (test/setup/models.ts makes them). */
export interface ImmichTestModel {
  dir: string;
  preset: 'openclip-tiny' | 'xlmr-tiny' | 'siglip-tiny' | 'mclip-tiny';
  externalData: boolean;
  dynamic: boolean;
}

const immich = (
  name: string,
  preset: ImmichTestModel['preset'],
  externalData = false,
  dynamic = false,
): ImmichTestModel => ({
  dir: path.join(root, 'test', '.models', 'immich', name),
  preset,
  externalData,
  dynamic,
});

/** immich-layout test models: fixed batch 1 and fixed L as immich exports them, one with external data, one older dynamic export. */
export const IMMICH_TEST_MODELS = {
  openclip: immich('openclip', 'openclip-tiny'),
  /** The seed's model shape: XLM-R text tower, weights as external data. */
  xlmr: immich('xlmr-external', 'xlmr-tiny', true),
  siglip: immich('siglip', 'siglip-tiny'),
  mclip: immich('mclip', 'mclip-tiny'),
  /** An older export: dynamic batch, outputs image_embedding / text_embedding. */
  openclipDynamic: immich('openclip-dynamic', 'openclip-tiny', false, true),
} as const satisfies Record<string, ImmichTestModel>;

/** A SigLIP model in Hugging Face's layout (towers with `pooler_output`, combined graph with its scale and bias); test/setup/models.ts makes it. */
export const HF_SIGLIP_TEST_MODEL_DIR = path.join(root, 'test', '.models', 'hf-siglip');

/** `../shared/clip` beside the checkout: present on developer machines, absent on a user's fresh clone. */
export const SHARED_CLIP_DIR = path.resolve(root, '..', 'shared', 'clip');
