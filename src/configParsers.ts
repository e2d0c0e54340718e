/**
 * The value parsers of the settings table and of a model's options: each throws an Error worded "expected …, got …"
 * (config.ts adds the setting's name), and returns the value in the type its Config field has.
 */
import os from 'node:os';
import path from 'node:path';
import ipaddr from 'ipaddr.js';

const MiB = 1024 * 1024;

/**
 * Which `Host` headers requests may carry (DNS rebinding): `auto` (decided by HOST, see {@link allowedHostNames}),
 * `any`, or exactly these host names.
 */
export type AllowedHostsSetting = 'auto' | 'any' | readonly string[];

/** A model to load besides the default one (`CLIP_MODELS=name=source,…`). */
export interface ExtraModel {
  readonly name: string;
  readonly source: string;
}

/**
 * Per-model options written after a model's source: `source;logitScale=112.3;logitBias=-16.5` in `CLIP_MODEL` and in
 * each `CLIP_MODELS` entry (`name=source;logitScale=…`). They set what the files of many exports do not carry: the
 * trained softmax temperature, and a SigLIP model's trained scale and bias; and when the model is loaded (`load=lazy`:
 * on its first job instead of at start). Keys are case-insensitive, camel or snake case.
 * These are the options one model may be given.
 */
/** When a model is loaded: `eager` at start, `lazy` on its first job (or an explicit start). */
export type LoadPolicy = 'eager' | 'lazy';
export const LOAD_POLICIES: readonly LoadPolicy[] = ['eager', 'lazy'];

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
    if (eq <= 0)
      throw new Error(
        `expected a model option key=value (${MODEL_OPTION_KEYS.join(', ')}), got ${JSON.stringify(part)}`,
      );
    const key = part.slice(0, eq).trim().toLowerCase().replace(/[_-]/g, '');
    const value = part.slice(eq + 1).trim();
    const number = value === '' ? Number.NaN : Number(value);
    switch (key) {
      case 'logitscale':
        if (!Number.isFinite(number) || number <= 0)
          throw new Error(
            `expected logitScale to be a positive number (the exp of the trained logit_scale), got ${JSON.stringify(value)}`,
          );
        options.logitScale = number;
        break;
      case 'logitbias':
        if (!Number.isFinite(number))
          throw new Error(`expected logitBias to be a number, got ${JSON.stringify(value)}`);
        options.logitBias = number;
        break;
      case 'load': {
        const policy = LOAD_POLICIES.find((p) => p === value.toLowerCase());
        if (policy === undefined)
          throw new Error(`expected load to be ${LOAD_POLICIES.join(' or ')}, got ${JSON.stringify(value)}`);
        options.load = policy;
        break;
      }
      default:
        throw new Error(
          `expected a model option among ${MODEL_OPTION_KEYS.join(', ')}, got ${JSON.stringify(part.slice(0, eq).trim())}`,
        );
    }
  }
  return { source: source.trim(), options };
}

export function integer(min: number, max = Number.MAX_SAFE_INTEGER): (raw: string) => number {
  return (raw) => {
    const value = Number(raw.trim());
    if (raw.trim() === '' || !Number.isInteger(value) || value < min || value > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `between ${min} and ${max}`;
      throw new Error(`expected an integer ${range}, got ${JSON.stringify(raw)}`);
    }
    return value;
  };
}

export function positiveNumber(raw: string): number {
  const value = Number(raw.trim());
  if (raw.trim() === '' || !Number.isFinite(value) || value <= 0) {
    throw new Error(`expected a positive number, got ${JSON.stringify(raw)}`);
  }
  return value;
}

export function optional<T>(parse: (raw: string) => T): (raw: string) => T | undefined {
  return (raw) => (raw.trim() === '' ? undefined : parse(raw));
}

const BYTE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: MiB,
  mb: 1e6,
  mib: MiB,
  g: 1024 * MiB,
  gb: 1e9,
  gib: 1024 * MiB,
};

/** A byte count: a plain integer or a number with a unit (`20MiB`, `100 MB`, `512k`). */
export function bytes(min: number): (raw: string) => number {
  return (raw) => {
    const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(raw);
    const unit = BYTE_UNITS[match?.[2]?.toLowerCase() ?? 'x'];
    const value = match && unit !== undefined ? Math.floor(Number(match[1]) * unit) : NaN;
    if (!Number.isSafeInteger(value) || value < min) {
      throw new Error(`expected a byte count >= ${min} (e.g. 1048576, 20MiB, 100MB), got ${JSON.stringify(raw)}`);
    }
    return value;
  };
}

export function boolean(raw: string): boolean {
  const value = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(value)) return true;
  if (['0', 'false', 'no', 'off'].includes(value)) return false;
  throw new Error(`expected true or false (or 1/0, yes/no, on/off), got ${JSON.stringify(raw)}`);
}

export function oneOf<T extends string>(values: readonly T[]): (raw: string) => T {
  return (raw) => {
    const value = raw.trim().toLowerCase();
    if ((values as readonly string[]).includes(value)) return value as T;
    throw new Error(`expected one of ${values.join(', ')}, got ${JSON.stringify(raw)}`);
  };
}

/** A comma list in priority order, each one of `values` (the execution providers), none twice. */
export function providerList<T extends string>(values: readonly T[]): (raw: string) => T[] {
  const parse = oneOf(values);
  return (raw) => {
    const providers = list(raw).map(parse);
    if (providers.length === 0)
      throw new Error(`expected a comma-separated list of ${values.join(', ')}, got ${JSON.stringify(raw)}`);
    const twice = providers.find((provider, i) => providers.indexOf(provider) !== i);
    if (twice !== undefined) throw new Error(`expected each provider once, got ${JSON.stringify(twice)} twice`);
    return providers;
  };
}

export function nonEmpty(raw: string): string {
  if (raw.trim() === '') throw new Error('expected a non-empty string, got ""');
  return raw.trim();
}

/** A comma list of CIDR networks (`10.20.0.0/16`, `fd00::/8`); a bare address is its own /32 or /128. */
export function cidrList(raw: string): string[] {
  return list(raw).map((item) => {
    const cidr = item.includes('/') ? item : `${item}/${ipaddr.IPv4.isValidFourPartDecimal(item) ? 32 : 128}`;
    try {
      const [address, bits] = ipaddr.parseCIDR(cidr);
      return `${address.toString()}/${bits}`;
    } catch {
      throw new Error(
        `expected CIDR networks like 10.20.0.0/16 or fd00::/8, separated by commas, got ${JSON.stringify(item)}`,
      );
    }
  });
}

export function list(raw: string): string[] {
  return raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

export function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
}

export function redisUrl(raw: string): string {
  try {
    const parsed = new URL(raw.trim());
    if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw new Error('not redis');
  } catch {
    throw new Error(`expected a redis:// or rediss:// URL, got ${JSON.stringify(raw.replace(/\/\/[^@]*@/, '//***@'))}`);
  }
  return raw.trim();
}

export function url(raw: string): string {
  try {
    const parsed = new URL(raw.trim());
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    throw new Error(`expected an http(s) URL, got ${JSON.stringify(raw)}`);
  }
  return raw.trim().replace(/\/+$/, '');
}

/** A model source with its per-model options (`source;logitScale=…;logitBias=…`), checked here and kept as written. */
export function modelSource(raw: string): string {
  const { source } = parseModelOptions(raw);
  if (source === '') throw new Error(`expected a model source before its options, got ${JSON.stringify(raw)}`);
  return expandHome(raw.trim());
}

/** `name=source,…`; the source may itself contain `=`-free hub ids, paths or catalogue names. */
export function modelList(raw: string): ExtraModel[] {
  const models = list(raw).map((item) => {
    const eq = item.indexOf('=');
    const name = item.slice(0, eq).trim();
    const source = item.slice(eq + 1).trim();
    if (eq <= 0 || name === '' || source === '') {
      throw new Error(`expected name=source pairs separated by commas, got ${JSON.stringify(item)}`);
    }
    return { name, source: modelSource(source) };
  });
  const names = new Set<string>();
  for (const { name } of models) {
    if (names.has(name)) throw new Error(`expected unique model names, got ${JSON.stringify(name)} twice`);
    names.add(name);
  }
  return models;
}

export function originList(raw: string): string[] {
  return list(raw).map((origin) => {
    if (origin === '*') return origin;
    try {
      return new URL(origin).origin;
    } catch {
      throw new Error(`expected origins like https://app.example.com (or *), got ${JSON.stringify(origin)}`);
    }
  });
}

/** A host name as a `Host` header carries it, without the port: `api.example.com`, `10.0.0.5`, `[::1]`. */
const HOST_NAME = /^(?:\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)$/i;

export function allowedHostList(raw: string): AllowedHostsSetting {
  const value = raw.trim().toLowerCase();
  if (value === '' || value === 'auto') return 'auto';
  if (value === '*') return 'any';
  const names = list(value).map((name) => name.replace(/\.$/, ''));
  const wrong = names.find((name) => name === '*' || !HOST_NAME.test(name));
  if (wrong !== undefined || names.length === 0) {
    throw new Error(
      `expected auto, * or host names without scheme or port (e.g. api.example.com,localhost,[::1]), got ${JSON.stringify(wrong ?? raw)}`,
    );
  }
  return names;
}
