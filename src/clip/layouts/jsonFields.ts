/**
 * The parse boundary's tools, shared by every layout: a JSON file read with errors that name it, and typed reads of
 * optional fields whose errors say what was expected and what was found.
 */
import fs from 'node:fs/promises';
import { AppError, ErrorCode } from '../../errors.js';

export type JsonObject = Record<string, unknown>;

export function isRecord(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function modelFileError(message: string, cause?: unknown): AppError {
  return new AppError(ErrorCode.ModelUnavailable, message, cause === undefined ? {} : { cause });
}

/** Reads and parses a JSON file; any failure becomes an error naming the file and why. */
export async function readJsonFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file is missing' : `cannot read it (${code ?? String(error)})`;
    throw modelFileError(`${file}: ${why}`, error);
  }
  if (text.trim() === '') throw modelFileError(`${file} is empty: a truncated download? Delete it and retry`);
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw modelFileError(`${file} is not valid JSON (truncated or corrupt?): ${(error as Error).message}`, error);
  }
}

/**
 * Typed reads of optional fields. Absent (or null) → undefined, present but wrong → an error worded
 * `invalid FILE: "field" expected X, but got Y`.
 */
export class FieldReader {
  readonly root: JsonObject;

  constructor(
    json: unknown,
    private readonly file: string,
  ) {
    if (!isRecord(json)) throw modelFileError(`invalid ${file}: expected a JSON object, but got ${describe(json)}`);
    this.root = json;
  }

  section(key: string): JsonObject | undefined {
    const value = this.root[key];
    if (value === undefined || value === null) return undefined;
    if (!isRecord(value)) throw this.fail(key, 'an object', value);
    return value;
  }

  bool(obj: JsonObject, key: string): boolean | undefined {
    const value = obj[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'boolean') throw this.fail(key, 'true or false', value);
    return value;
  }

  finiteNumber(obj: JsonObject | undefined, key: string, prefix = ''): number | undefined {
    const value = obj?.[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number' || !Number.isFinite(value)) throw this.fail(prefix + key, 'a number', value);
    return value;
  }

  positiveNumber(obj: JsonObject, key: string): number | undefined {
    const value = this.finiteNumber(obj, key);
    if (value !== undefined && value <= 0) throw this.fail(key, 'a positive number', value);
    return value;
  }

  positiveInt(obj: JsonObject | undefined, key: string, prefix = ''): number | undefined {
    const value = obj?.[key];
    if (value === undefined || value === null) return undefined;
    if (!isPositiveInt(value)) throw this.fail(prefix + key, 'a positive integer', value);
    return value;
  }

  nonNegativeInt(obj: JsonObject, key: string): number | undefined {
    const value = obj[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
      throw this.fail(key, 'a non-negative integer', value);
    }
    return value;
  }

  /** `size`: a number, `{shortest_edge}` or `{height, width}`. */
  shortestEdge(obj: JsonObject, key: string): number | undefined {
    const value = obj[key];
    if (value === undefined || value === null) return undefined;
    if (isPositiveInt(value)) return value;
    if (isRecord(value)) {
      if (isPositiveInt(value['shortest_edge'])) return value['shortest_edge'];
      if (isPositiveInt(value['height']) && isPositiveInt(value['width'])) {
        return Math.min(value['height'], value['width']);
      }
    }
    throw this.fail(key, 'a positive integer, {"shortest_edge": n} or {"height": h, "width": w}', value);
  }

  /** `crop_size`: a number or `{height, width}`. */
  size(obj: JsonObject, key: string): { height: number; width: number } | undefined {
    const value = obj[key];
    if (value === undefined || value === null) return undefined;
    if (isPositiveInt(value)) return { height: value, width: value };
    if (isRecord(value) && isPositiveInt(value['height']) && isPositiveInt(value['width'])) {
      return { height: value['height'], width: value['width'] };
    }
    throw this.fail(key, 'a positive integer or {"height": h, "width": w}', value);
  }

  /** `image_mean`/`image_std`: three numbers, or one number (or a one-element list) meaning all three channels. */
  triple(obj: JsonObject, key: string, positive: boolean): [number, number, number] | undefined {
    const value = obj[key];
    if (value === undefined || value === null) return undefined;
    const list = typeof value === 'number' ? [value] : value;
    const ok = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && (!positive || v > 0);
    if (Array.isArray(list) && (list.length === 1 || list.length === 3) && list.every(ok)) {
      const [a, b = a, c = a] = list;
      return [a as number, b as number, c as number];
    }
    throw this.fail(key, `three ${positive ? 'positive ' : ''}numbers (one per RGB channel)`, value);
  }

  private fail(field: string, expected: string, got: unknown): AppError {
    return modelFileError(`invalid ${this.file}: "${field}" expected ${expected}, but got ${describe(got)}`);
  }
}

function isPositiveInt(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}

function describe(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
