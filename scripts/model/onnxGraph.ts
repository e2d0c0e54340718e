/**
 * A small in-memory ONNX graph model and a builder for it. The generator composes graphs here,
 * rewrites them (quantizeDynamic.ts) and only then serialises them (writeOnnxModel.ts), so no
 * pass ever has to decode protobuf.
 */

/** ONNX `TensorProto.DataType` codes used by the generator. */
export enum DataType {
  Float = 1,
  Uint8 = 2,
  Int8 = 3,
  Int32 = 6,
  Int64 = 7,
}

export type TensorData = Float32Array | Uint8Array | Int8Array | Int32Array | BigInt64Array;

/** A named constant tensor (an initializer). `data` is row-major and holds exactly prod(dims) elements. */
export interface Tensor {
  name: string;
  dataType: DataType;
  dims: readonly number[];
  data: TensorData;
}

/** A graph input or output: a dimension is a fixed size or a symbolic name (`batch_size`). */
export interface ValueInfo {
  name: string;
  elemType: DataType;
  shape: readonly (number | string)[];
}

export type AttributeValue = number | readonly number[] | string;

/** One attribute; `kind` disambiguates ints from floats, which JS numbers cannot. */
export type Attribute =
  | { name: string; kind: 'int'; value: number }
  | { name: string; kind: 'float'; value: number }
  | { name: string; kind: 'ints'; value: readonly number[] }
  | { name: string; kind: 'string'; value: string };

export interface GraphNode {
  name: string;
  opType: string;
  /** '' for the default ONNX domain. */
  domain: string;
  /** '' marks an omitted optional input. */
  inputs: string[];
  outputs: string[];
  attributes: Attribute[];
}

export interface Graph {
  name: string;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  nodes: GraphNode[];
  /** By name, in insertion order (which is the order they are written in). */
  initializers: Map<string, Tensor>;
}

/** Attribute shorthands for {@link GraphBuilder.op}. */
export const attr = {
  int: (name: string, value: number): Attribute => ({ name, kind: 'int', value }),
  float: (name: string, value: number): Attribute => ({ name, kind: 'float', value }),
  ints: (name: string, value: readonly number[]): Attribute => ({ name, kind: 'ints', value }),
  string: (name: string, value: string): Attribute => ({ name, kind: 'string', value }),
};

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((product, dim) => product * dim, 1);
}

/** A float32 tensor of the given shape, zero-filled unless `data` is given. */
export function floatTensor(name: string, dims: readonly number[], data?: Float32Array): Tensor {
  const size = elementCount(dims);
  if (data !== undefined && data.length !== size) {
    throw new RangeError(`Expected ${size} elements for ${name} [${dims.join(', ')}], got ${data.length}`);
  }
  return { name, dataType: DataType.Float, dims: [...dims], data: data ?? new Float32Array(size) };
}

export interface OpOptions {
  /** Node name; defaults to `<scope>/<OpType>_<n>`. */
  name?: string;
  /** Operator domain, e.g. `com.microsoft`; default ''. */
  domain?: string;
  /** Output names; by default one output named after the node. */
  outputs?: string[];
}

/**
 * Builds a {@link Graph} in topological order: each `op` call appends a node whose inputs must already
 * exist (graph inputs, initializers or earlier outputs). Node and value names are made unique.
 */
export class GraphBuilder {
  readonly #name: string;
  readonly #inputs: ValueInfo[] = [];
  readonly #outputs: ValueInfo[] = [];
  readonly #nodes: GraphNode[] = [];
  readonly #initializers = new Map<string, Tensor>();
  readonly #defined = new Set<string>();
  readonly #constants = new Map<string, string>();
  #counter = 0;
  #scope = '';

  constructor(name: string) {
    this.#name = name;
  }

  /** Runs `body` with node names prefixed by `scope` (e.g. `/vision_model/encoder/layers.0`). */
  scoped<T>(scope: string, body: () => T): T {
    const previous = this.#scope;
    this.#scope = `${previous}/${scope}`;
    try {
      return body();
    } finally {
      this.#scope = previous;
    }
  }

  input(info: ValueInfo): string {
    this.#define(info.name);
    this.#inputs.push(info);
    return info.name;
  }

  /** Declares `info.name`, which must already be produced by a node, as a graph output. */
  output(info: ValueInfo): void {
    if (!this.#defined.has(info.name)) throw new Error(`Graph output ${info.name} is not produced by any node`);
    this.#outputs.push(info);
  }

  /** Adds a weight; adding the same tensor object twice is a no-op (weights shared between towers). */
  initializer(tensor: Tensor): string {
    const existing = this.#initializers.get(tensor.name);
    if (existing === tensor) return tensor.name;
    if (existing !== undefined) throw new Error(`Two different initializers named ${tensor.name}`);
    this.#define(tensor.name);
    this.#initializers.set(tensor.name, tensor);
    return tensor.name;
  }

  /** A small int64 constant (shapes, axes, indices); scalar when `dims` is []. */
  int64(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.#constant(
      DataType.Int64,
      BigInt64Array.from(values, (v) => BigInt(v)),
      dims,
      'const_i64',
    );
  }

  /** A small float32 constant; scalar when `dims` is []. */
  float(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.#constant(DataType.Float, Float32Array.from(values), dims, 'const_f32');
  }

  /** Appends a node; returns its first output's name. */
  op(
    opType: string,
    inputs: readonly string[],
    attributes: readonly Attribute[] = [],
    options: OpOptions = {},
  ): string {
    const [first] = this.opMulti(opType, inputs, attributes, options);
    if (first === undefined) throw new Error(`${opType} has no outputs`);
    return first;
  }

  /** Appends a node; returns all its output names. */
  opMulti(
    opType: string,
    inputs: readonly string[],
    attributes: readonly Attribute[] = [],
    options: OpOptions = {},
  ): string[] {
    for (const input of inputs) {
      if (input !== '' && !this.#defined.has(input)) throw new Error(`${opType} input ${input} is not defined yet`);
    }
    const name = options.name ?? `${this.#scope}/${opType}_${this.#counter++}`;
    const outputs = options.outputs ?? [`${name}_output_0`];
    for (const output of outputs) this.#define(output);
    this.#nodes.push({
      name,
      opType,
      domain: options.domain ?? '',
      inputs: [...inputs],
      outputs,
      attributes: [...attributes],
    });
    return outputs;
  }

  build(): Graph {
    return {
      name: this.#name,
      inputs: [...this.#inputs],
      outputs: [...this.#outputs],
      nodes: [...this.#nodes],
      initializers: new Map(this.#initializers),
    };
  }

  #constant(dataType: DataType, data: TensorData, dims: readonly number[], prefix: string): string {
    if (elementCount(dims) !== data.length)
      throw new RangeError(
        `Constant of shape [${dims.join(', ')}] needs ${elementCount(dims)} values, got ${data.length}`,
      );
    // One initializer per distinct value: 12 layers need the same reshape shapes and scales.
    const key = `${dataType}|${dims.join(',')}|${data.join(',')}`;
    const existing = this.#constants.get(key);
    if (existing !== undefined) return existing;
    const name = `${prefix}_${this.#constants.size}`;
    this.#constants.set(key, name);
    return this.initializer({ name, dataType, dims: [...dims], data });
  }

  #define(name: string): void {
    if (this.#defined.has(name)) throw new Error(`Value ${name} is defined twice`);
    this.#defined.add(name);
  }
}
