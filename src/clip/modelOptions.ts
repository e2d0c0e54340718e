/**
 * Per-model options written after a model's source: `source;logitScale=112.3;logitBias=-16.5` in `CLIP_MODEL` and in
 * each `CLIP_MODELS` entry (`name=source;logitScale=…`). They set what the files of many exports do not carry: the
 * trained softmax temperature, and a SigLIP model's trained scale and bias; and when the model is loaded (`load=lazy`: on its
 * first job instead of at start). Keys are case-insensitive, camel or snake case.
 */

/** When a model is loaded: `eager` at start, `lazy` on its first job (or an explicit start). */
export type LoadPolicy = 'eager' | 'lazy';
export const LOAD_POLICIES: readonly LoadPolicy[] = ['eager', 'lazy'];

/** The options one model may be given. */
export interface ModelOptions {
  /** The trained logit scale (the exp of the checkpoint's `logit_scale`, e.g. 100 for OpenAI CLIP), > 0. */
  logitScale?: number | undefined;
  /** A SigLIP model's trained `logit_bias` (typically around −10 to −17). */
  logitBias?: number | undefined;
  /** When the model is loaded; absent means `eager`. */
  load?: LoadPolicy | undefined;
}

export const MODEL_OPTION_KEYS = ['logitScale', 'logitBias', 'load'] as const;

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
      case 'load': {
        const policy = LOAD_POLICIES.find((p) => p === value.toLowerCase());
        if (policy === undefined) throw new Error(`expected load to be ${LOAD_POLICIES.join(' or ')}, got ${JSON.stringify(value)}`);
        options.load = policy;
        break;
      }
      default:
        throw new Error(`expected a model option among ${MODEL_OPTION_KEYS.join(', ')}, got ${JSON.stringify(part.slice(0, eq).trim())}`);
    }
  }
  return { source: source.trim(), options };
}
