/**
 * Per-model options written after a model's source: `source;logitScale=112.3;logitBias=-16.5` in `CLIP_MODEL` and in
 * each `CLIP_MODELS` entry (`name=source;logitScale=…`). They set what the files of many exports do not carry: the
 * trained softmax temperature, and a SigLIP model's trained scale and bias. Keys are case-insensitive, camel or snake case.
 */

/** The options one model may be given. */
export interface ModelOptions {
  /** The trained logit scale (the exp of the checkpoint's `logit_scale`, e.g. 100 for OpenAI CLIP), > 0. */
  logitScale?: number | undefined;
  /** A SigLIP model's trained `logit_bias` (typically around −10 to −17). */
  logitBias?: number | undefined;
}

export const MODEL_OPTION_KEYS = ['logitScale', 'logitBias'] as const;

/**
 * Splits `source;key=value;…` into the source and its options. Throws an Error worded "expected …, got …" for an
 * unknown key, a missing `=`, or a value that is not a number in range.
 */
export function parseModelOptions(text: string): { source: string; options: ModelOptions } {
  const [source = '', ...parts] = text.split(';');
  const options: ModelOptions = {};
  for (const raw of parts) {
    const part = raw.trim();
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error(`expected a model option key=value (${MODEL_OPTION_KEYS.join(', ')}), got ${JSON.stringify(part)}`);
    const key = part.slice(0, eq).trim().toLowerCase().replace(/[_-]/g, '');
    const value = part.slice(eq + 1).trim();
    const number = value === '' ? Number.NaN : Number(value);
    switch (key) {
      case 'logitscale':
        if (!Number.isFinite(number) || number <= 0) throw new Error(`expected logitScale to be a positive number (the exp of the trained logit_scale), got ${JSON.stringify(value)}`);
        options.logitScale = number;
        break;
      case 'logitbias':
        if (!Number.isFinite(number)) throw new Error(`expected logitBias to be a number, got ${JSON.stringify(value)}`);
        options.logitBias = number;
        break;
      default:
        throw new Error(`expected a model option among ${MODEL_OPTION_KEYS.join(', ')}, got ${JSON.stringify(part.slice(0, eq).trim())}`);
    }
  }
  return { source: source.trim(), options };
}
