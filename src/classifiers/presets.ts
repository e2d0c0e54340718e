/**
 * The preset classifiers every key may use by id, on any model: OpenAI's ImageNet-1k zero-shot setup with its 80
 * templates, and with the shorter list open_clip keeps as SIMPLE_IMAGENET_TEMPLATES (imagenetMetadata.ts).
 */
import { IMAGENET_CLASSNAMES, OPENAI_IMAGENET_TEMPLATES, SIMPLE_IMAGENET_TEMPLATES } from './imagenetMetadata.js';

export interface Preset {
  id: string;
  name: string;
  classes: readonly string[];
  templates: readonly string[];
}

export const PRESETS: readonly Preset[] = [
  {
    id: 'imagenet-1k',
    name: "ImageNet-1k (OpenAI's 1,000 class names × 80 prompt templates)",
    classes: IMAGENET_CLASSNAMES,
    templates: OPENAI_IMAGENET_TEMPLATES,
  },
  {
    id: 'imagenet-1k-simple',
    name: "ImageNet-1k (OpenAI's 1,000 class names × open_clip's simple prompt templates)",
    classes: IMAGENET_CLASSNAMES,
    templates: SIMPLE_IMAGENET_TEMPLATES,
  },
];

export const PRESET_IDS: readonly string[] = PRESETS.map((preset) => preset.id);
