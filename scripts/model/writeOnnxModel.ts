/**
 * Serialises a {@link Graph} as an ONNX ModelProto file.
 *
 * Small messages (nodes, inputs, tensor headers) are encoded with onnx-proto; weight bytes are
 * streamed straight from their typed arrays into the file, so a 600 MB model never exists as one
 * JS buffer. That works because protobuf fields may come in any order: a TensorProto is its header
 * fields followed by a `raw_data` field we frame by hand, and a GraphProto is its encoded body followed
 * by the `initializer` fields.
 */
import { rename, open, rm, writeFile, type FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { type Attribute, type Graph, type TensorData, type ValueInfo } from './onnxGraph.js';

const { onnx } = onnxProto;

/** An operator set a model imports: '' is the default ONNX domain. */
export interface OpsetImport {
  domain: string;
  version: number;
}

/**
 * ONNX external data: every initializer of at least `minBytes` goes to a file of its own beside the model (named after
 * the tensor, as torch.onnx.export names them for models over 2 GB), referenced by `location`/`offset`/`length`.
 */
export interface ExternalDataOptions {
  minBytes: number;
  /** Told of each external file written: its name (relative to the model's folder) and size. */
  onFile?: (name: string, bytes: number) => void;
}

export interface OnnxModel {
  graph: Graph;
  irVersion: number;
  opsetImports: readonly OpsetImport[];
  producerName: string;
  producerVersion: string;
}

// Wire tags: (field number << 3) | 2 (length-delimited).
const TAG_MODEL_GRAPH = (7 << 3) | 2;
const TAG_GRAPH_INITIALIZER = (5 << 3) | 2;
const TAG_TENSOR_RAW_DATA = (9 << 3) | 2;

/** Chunks below this are gathered before a write; larger weights are written directly. */
const WRITE_BUFFER_BYTES = 1 << 20;

function varint(value: number): Uint8Array {
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    bytes.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  bytes.push(rest);
  return Uint8Array.from(bytes);
}

function bytesOf(data: TensorData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function encodeAttribute(attribute: Attribute): onnxProto.onnx.IAttributeProto {
  const { AttributeType } = onnx.AttributeProto;
  switch (attribute.kind) {
    case 'int':
      return { name: attribute.name, type: AttributeType.INT, i: attribute.value };
    case 'float':
      return { name: attribute.name, type: AttributeType.FLOAT, f: attribute.value };
    case 'ints':
      return { name: attribute.name, type: AttributeType.INTS, ints: [...attribute.value] };
    case 'string':
      return { name: attribute.name, type: AttributeType.STRING, s: new TextEncoder().encode(attribute.value) };
  }
}

function encodeValueInfo(info: ValueInfo): onnxProto.onnx.IValueInfoProto {
  return {
    name: info.name,
    type: {
      tensorType: {
        elemType: info.elemType,
        shape: { dim: info.shape.map((dim) => (typeof dim === 'number' ? { dimValue: dim } : { dimParam: dim })) },
      },
    },
  };
}

/** Buffered sequential writes to one file handle. */
class ChunkWriter {
  readonly #file: FileHandle;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  bytesWritten = 0;

  constructor(file: FileHandle) {
    this.#file = file;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (chunk.byteLength >= WRITE_BUFFER_BYTES) {
      await this.flush();
      await this.#writeAll(chunk);
      return;
    }
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.byteLength;
    if (this.#pendingBytes >= WRITE_BUFFER_BYTES) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.#pendingBytes === 0) return;
    const joined = Buffer.concat(this.#pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    await this.#writeAll(joined);
  }

  async #writeAll(chunk: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < chunk.byteLength) {
      const { bytesWritten } = await this.#file.write(chunk, offset, chunk.byteLength - offset);
      offset += bytesWritten;
    }
    this.bytesWritten += chunk.byteLength;
  }
}

/**
 * Writes `model` to `file` (via a temporary file renamed into place, so a reader never sees half a model).
 * @returns the file's size in bytes.
 */
export async function writeOnnxModel(file: string, model: OnnxModel, external?: ExternalDataOptions): Promise<number> {
  // raw_data is little-endian by the ONNX spec; typed arrays use the host's byte order.
  if (os.endianness() !== 'LE') throw new Error('The test-model generator needs a little-endian host');
  const { graph } = model;

  const header = onnx.ModelProto.encode({
    irVersion: model.irVersion,
    producerName: model.producerName,
    producerVersion: model.producerVersion,
    opsetImport: model.opsetImports.map(({ domain, version }) => ({ domain, version })),
  }).finish();

  const graphBody = onnx.GraphProto.encode({
    name: graph.name,
    node: graph.nodes.map((node) => ({
      name: node.name,
      opType: node.opType,
      domain: node.domain,
      input: node.inputs,
      output: node.outputs,
      attribute: node.attributes.map(encodeAttribute),
    })),
    input: graph.inputs.map(encodeValueInfo),
    output: graph.outputs.map(encodeValueInfo),
  }).finish();

  const externalFiles: { name: string; raw: Uint8Array }[] = [];
  const tensors = [...graph.initializers.values()].map((tensor) => {
    const bytes = bytesOf(tensor.data);
    if (external !== undefined && bytes.byteLength >= external.minBytes) {
      const location = externalFileName(tensor.name, externalFiles.length);
      externalFiles.push({ name: location, raw: bytes });
      const tensorHeader = onnx.TensorProto.encode({
        name: tensor.name,
        dataType: tensor.dataType,
        dims: [...tensor.dims],
        externalData: [
          { key: 'location', value: location },
          { key: 'offset', value: '0' },
          { key: 'length', value: String(bytes.byteLength) },
        ],
        dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      }).finish();
      const tensorLength = varint(tensorHeader.byteLength);
      return {
        tensorHeader,
        raw: undefined,
        rawLength: new Uint8Array(0),
        tensorLength,
        fieldBytes: 1 + tensorLength.byteLength + tensorHeader.byteLength,
      };
    }
    const tensorHeader = onnx.TensorProto.encode({
      name: tensor.name,
      dataType: tensor.dataType,
      dims: [...tensor.dims],
    }).finish();
    const raw = bytes;
    const rawLength = varint(raw.byteLength);
    const tensorBytes = tensorHeader.byteLength + 1 + rawLength.byteLength + raw.byteLength;
    const tensorLength = varint(tensorBytes);
    return { tensorHeader, raw, rawLength, tensorLength, fieldBytes: 1 + tensorLength.byteLength + tensorBytes };
  });
  const graphBytes = graphBody.byteLength + tensors.reduce((sum, t) => sum + t.fieldBytes, 0);

  const temporary = `${file}.tmp-${process.pid}`;
  const handle = await open(temporary, 'w');
  try {
    const writer = new ChunkWriter(handle);
    await writer.write(header);
    await writer.write(Uint8Array.of(TAG_MODEL_GRAPH));
    await writer.write(varint(graphBytes));
    await writer.write(graphBody);
    for (const t of tensors) {
      await writer.write(Uint8Array.of(TAG_GRAPH_INITIALIZER));
      await writer.write(t.tensorLength);
      await writer.write(t.tensorHeader);
      if (t.raw === undefined) continue;
      await writer.write(Uint8Array.of(TAG_TENSOR_RAW_DATA));
      await writer.write(t.rawLength);
      await writer.write(t.raw);
    }
    await writer.flush();
    await handle.close();
    for (const { name, raw } of externalFiles) {
      await writeFile(path.join(path.dirname(file), name), raw);
      external?.onFile?.(name, raw.byteLength);
    }
    await rename(temporary, file);
    return writer.bytesWritten;
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(temporary, { force: true });
    throw error;
  }
}

/** A file name for an external tensor: its name made safe, as torch's exporter does (`text_model.x.weight` → `text_model.x.weight`). */
function externalFileName(tensorName: string, index: number): string {
  const safe = tensorName.replace(/[^A-Za-z0-9_.-]/g, '_');
  return safe === '' || safe.startsWith('.') ? `tensor_${index}` : safe;
}
