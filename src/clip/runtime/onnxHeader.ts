/**
 * The inputs an ONNX file declares, read from its protobuf structure without loading the graph: how the runtime
 * decides, before creating any session, how many copies of a graph to run and with how many threads each (a session's
 * thread count cannot change once it exists, and creating a ViT-B/32 session costs seconds). The weights are skipped
 * by their length prefixes, never read; the sessions created afterwards remain the authority on every name and shape.
 *
 * The fields used (onnx.proto3): ModelProto.graph = 7; GraphProto.input = 11; ValueInfoProto.name = 1, .type = 2;
 * TypeProto.tensor_type = 1; TypeProto.Tensor.elem_type = 1, .shape = 2; TensorShapeProto.dim = 1;
 * Dimension.dim_value = 1, .dim_param = 2.
 */
import fs from 'node:fs/promises';
import type { ValueInfo } from './onnx.js';

/** ONNX's TensorProto.DataType numbers, named as ONNX Runtime's metadata names them. */
const ELEMENT_TYPES: Record<number, string> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
  16: 'bfloat16',
};

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH = 2;
const WIRE_FIXED32 = 5;
const CHUNK = 64 * 1024;

/** Reads a file forward through a small buffer; `skip` moves past bytes (a tensor's weights) without reading them. */
class FileReader {
  #position = 0;
  #buffer = Buffer.alloc(CHUNK);
  #start = 0;
  #end = 0;

  constructor(
    readonly handle: fs.FileHandle,
    readonly size: number,
  ) {}

  get position(): number {
    return this.#position;
  }

  async byte(): Promise<number> {
    if (this.#position >= this.size) throw new Error('unexpected end of file');
    if (this.#position < this.#start || this.#position >= this.#end) {
      const { bytesRead } = await this.handle.read(this.#buffer, 0, CHUNK, this.#position);
      if (bytesRead === 0) throw new Error('unexpected end of file');
      this.#start = this.#position;
      this.#end = this.#position + bytesRead;
    }
    return this.#buffer[this.#position++ - this.#start]!;
  }

  async varint(): Promise<number> {
    let value = 0;
    for (let shift = 1; ; shift *= 128) {
      const byte = await this.byte();
      value += (byte & 0x7f) * shift;
      if (byte < 0x80) return value;
      if (shift > 2 ** 56) throw new Error('malformed varint');
    }
  }

  async bytes(length: number): Promise<Buffer> {
    if (this.#position + length > this.size) throw new Error('a field runs past the end of the file');
    const out = Buffer.alloc(length);
    const { bytesRead } = await this.handle.read(out, 0, length, this.#position);
    if (bytesRead !== length) throw new Error('unexpected end of file');
    this.#position += length;
    return out;
  }

  skip(length: number): void {
    if (this.#position + length > this.size) throw new Error('a field runs past the end of the file');
    this.#position += length;
  }

  /** Skips the value of a field of this wire type. */
  async skipValue(wire: number): Promise<void> {
    if (wire === WIRE_VARINT) await this.varint();
    else if (wire === WIRE_FIXED64) this.skip(8);
    else if (wire === WIRE_LENGTH) this.skip(await this.varint());
    else if (wire === WIRE_FIXED32) this.skip(4);
    else throw new Error(`unsupported protobuf wire type ${wire}`);
  }
}

/** The fields of an in-memory message, in order, as [field number, wire type, value]. */
function* fields(message: Buffer): Generator<[number, number, number | Buffer]> {
  let at = 0;
  const varint = (): number => {
    let value = 0;
    for (let shift = 1; ; shift *= 128) {
      if (at >= message.length) throw new Error('truncated message');
      const byte = message[at++]!;
      value += (byte & 0x7f) * shift;
      if (byte < 0x80) return value;
    }
  };
  while (at < message.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (wire === WIRE_VARINT) yield [field, wire, varint()];
    else if (wire === WIRE_LENGTH) {
      const length = varint();
      if (at + length > message.length) throw new Error('truncated message');
      yield [field, wire, message.subarray(at, at + length)];
      at += length;
    } else if (wire === WIRE_FIXED64) at += 8;
    else if (wire === WIRE_FIXED32) at += 4;
    else throw new Error(`unsupported protobuf wire type ${wire}`);
  }
}

function sub(message: Buffer, field: number): Buffer[] {
  const out: Buffer[] = [];
  for (const [number, wire, value] of fields(message))
    if (number === field && wire === WIRE_LENGTH) out.push(value as Buffer);
  return out;
}

/** A graph input as a {@link ValueInfo}: a dimension is its fixed size or its symbolic name ('' when unnamed). */
function parseValueInfo(message: Buffer): ValueInfo {
  const name = sub(message, 1)[0]?.toString('utf8') ?? '';
  const tensor = sub(message, 2).flatMap((type) => sub(type, 1))[0];
  if (tensor === undefined) return { name, type: 'non-tensor', shape: [] };
  let elemType: number | undefined;
  for (const [number, wire, value] of fields(tensor))
    if (number === 1 && wire === WIRE_VARINT) elemType = value as number;
  const shape = sub(tensor, 2)
    .flatMap((s) => sub(s, 1))
    .map((dim): number | string => {
      let size: number | string = '';
      for (const [number, wire, value] of fields(dim)) {
        if (number === 1 && wire === WIRE_VARINT) size = value as number;
        else if (number === 2 && wire === WIRE_LENGTH) size = (value as Buffer).toString('utf8');
      }
      return size;
    });
  return {
    name,
    type: elemType === undefined ? 'unknown' : (ELEMENT_TYPES[elemType] ?? `onnx type ${elemType}`),
    shape,
  };
}

/** The graph inputs `path` declares (initializers listed as inputs by old exporters included), in order. */
export async function declaredInputs(path: string): Promise<ValueInfo[]> {
  const handle = await fs.open(path, 'r');
  try {
    const reader = new FileReader(handle, (await handle.stat()).size);
    const inputs: ValueInfo[] = [];
    let sawGraph = false;
    while (reader.position < reader.size) {
      const tag = await reader.varint();
      const [field, wire] = [Math.floor(tag / 8), tag % 8];
      if (field !== 7 || wire !== WIRE_LENGTH) {
        await reader.skipValue(wire);
        continue;
      }
      sawGraph = true;
      const graphLength = await reader.varint();
      const graphEnd = reader.position + graphLength;
      while (reader.position < graphEnd) {
        const inner = await reader.varint();
        const [graphField, graphWire] = [Math.floor(inner / 8), inner % 8];
        if (graphField === 11 && graphWire === WIRE_LENGTH)
          inputs.push(parseValueInfo(await reader.bytes(await reader.varint())));
        else await reader.skipValue(graphWire);
      }
    }
    if (!sawGraph) throw new Error('no graph in the file');
    return inputs;
  } catch (error) {
    throw new Error(
      `${path}: could not read the ONNX graph's inputs: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  } finally {
    await handle.close();
  }
}
