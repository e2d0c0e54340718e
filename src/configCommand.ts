/**
 * How the settings table becomes flags, `--help` and the configuration reference: each setting is an environment
 * variable and a flag (the env name in kebab case), a flag wins over the environment, the environment over the
 * default. Works on any table of SettingSpec rows; config.ts passes its own.
 */
import { Command, CommanderError, Option } from 'commander';
import type { Config } from './config.js';

/** One row of the settings table (docs/configuration.md, `--help`). */
export interface SettingDoc {
  env: string;
  flag: string;
  /** The default as a human reads it (`4000`, `none`, `os.availableParallelism()`). */
  default: string;
  description: string;
}

/** A setting's value was malformed or out of range; the message names the variable and the flag. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Thrown for `--help`: not an error, main prints the help and exits 0. */
export class HelpRequested extends Error {
  override name = 'HelpRequested';
}

/** One row of the settings table. */
export interface SettingSpec<T> {
  env: string;
  description: string;
  /** The default, computed from the machine or from the settings above it (in table order) when it depends on them. */
  defaultValue: T | ((settings: Readonly<Partial<Config>>) => T);
  /** How the default reads in docs, when `String(defaultValue)` would not do. */
  defaultText?: string;
  parse: (raw: string) => T;
  /** Booleans may be given as a bare flag (`--hf-hub-offline`). */
  boolean?: boolean;
}

/** The table's rows, keyed by their Config field, in table order. */
export type SettingEntries = readonly (readonly [keyof Config, SettingSpec<unknown>])[];

export function flagOf(env: string): string {
  return `--${env.toLowerCase().replace(/_/g, '-')}`;
}

function attributeOf(env: string): string {
  return env.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function defaultTextOf(spec: SettingSpec<unknown>): string {
  if (spec.defaultText !== undefined) return spec.defaultText;
  const value =
    typeof spec.defaultValue === 'function'
      ? (spec.defaultValue as (settings: Partial<Config>) => unknown)({})
      : spec.defaultValue;
  return String(value);
}

function buildCommand(entries: SettingEntries): Command {
  const command = new Command('clip-server')
    .description('Zero-shot image classification server (GraphQL + REST) over CLIP.')
    .exitOverride()
    .allowExcessArguments(false)
    // Help and errors go through the caller (main prints them); loadConfig itself writes nothing.
    .configureOutput({ writeOut: () => {}, writeErr: () => {} });
  for (const [, spec] of entries) {
    const flags = spec.boolean === true ? `${flagOf(spec.env)} [value]` : `${flagOf(spec.env)} <value>`;
    const option = new Option(flags, `${spec.description} (env ${spec.env}; default ${defaultTextOf(spec)})`);
    command.addOption(option);
  }
  return command;
}

/** The rows as docs/configuration.md and `--help` show them. */
export function describeSettingRows(entries: SettingEntries): SettingDoc[] {
  return entries.map(([, spec]) => ({
    env: spec.env,
    flag: flagOf(spec.env),
    default: defaultTextOf(spec),
    description: spec.description,
  }));
}

/** `--help` text for the rows. */
export function helpTextOf(entries: SettingEntries): string {
  return buildCommand(entries).helpInformation();
}

/**
 * Every setting's value from `argv` (user arguments only) and `env`, else its default (computed from the values
 * before it, in table order). Throws ConfigError naming the variable and flag for a malformed value,
 * HelpRequested for `--help`.
 */
export function readSettings(
  entries: SettingEntries,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Record<string, unknown> {
  const command = buildCommand(entries);
  try {
    command.parse([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.help')
        throw new HelpRequested(command.helpInformation());
      throw new ConfigError(error.message.replace(/^error: /, ''));
    }
    throw error;
  }
  const flags = command.opts<Record<string, string | true | undefined>>();

  const values: Record<string, unknown> = {};
  for (const [key, spec] of entries) {
    const flag = flags[attributeOf(spec.env)];
    const raw = flag === true ? 'true' : (flag ?? env[spec.env]);
    if (raw === undefined) {
      values[key] =
        typeof spec.defaultValue === 'function'
          ? (spec.defaultValue as (settings: Partial<Config>) => unknown)(values)
          : spec.defaultValue;
      continue;
    }
    try {
      values[key] = spec.parse(raw);
    } catch (error) {
      const source = flag === undefined ? spec.env : `${flagOf(spec.env)} (${spec.env})`;
      throw new ConfigError(`${source}: ${(error as Error).message}`);
    }
  }
  return values;
}
