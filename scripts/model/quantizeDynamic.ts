/**
 * int8 dynamic quantisation of a graph's weights, as ONNX Runtime's `quantize_dynamic` does it:
 * weights are quantised once, here (symmetric int8, one scale per output column); activations are
 * quantised at run time by the op itself.
 *
 * - `MatMul(x, W)` with W a 2-D float initializer, and the `Add(·, b)` of a 1-D bias that follows it,
 *   become one com.microsoft `DynamicQuantizeMatMul(x, W_q, scale, zero_point, b)`: ORT's u8s8
 *   kernel, which uses VNNI where the CPU has it.
 * - `Gather(E, ids)` of a 2-D float embedding table becomes a Gather from an int8 table with one scale
 *   per row, dequantised after the lookup (it is a lookup, so there is no int8 arithmetic to gain,
 *   only the file size).
 * Everything else (the patch-embedding Conv, activation × activation attention products) stays float.
 *
 * Weights use 7 bits (±63), as `quantize_dynamic(reduce_range=True)` does: on x86 without VNNI (AVX2, and
 * AVX-512 without VNNI) ORT's u8s8 kernel adds pairs of u8 × s8 products in int16 (`vpmaddubsw`), and full-range
 * weights saturate it (2 × 255 × 127 > 32767). Found on an AMD EPYC with AVX2 only: full-range weights gave an int8
 * vision tower whose rows had cosine 0.9897 with fp32, and a test graph errors of 4× the 5 % bound; with ±63
 * (2 × 255 × 63 = 32130) the results are right on every x86, at the cost of one bit of weight precision.
 */
import { attr, DataType, type Graph, type GraphNode, type Tensor } from './onnxGraph.js';

export const MICROSOFT_DOMAIN = 'com.microsoft';

/** Quantised forms of float weights by original name, shared between the graphs that use the same weights. */
export type QuantizationCache = Map<string, Tensor[]>;

interface Quantized {
  values: Tensor;
  scale: Tensor;
  zeroPoint?: Tensor;
}

/** Largest quantised weight magnitude: 7 bits, see the file's comment. */
const WEIGHT_RANGE = 63;

/** Per-column (`perRow` false) or per-row symmetric int8 quantisation (±{@link WEIGHT_RANGE}) of a 2-D float tensor. */
function quantizeSymmetric(tensor: Tensor, perRow: boolean): Quantized {
  const [rows, columns] = tensor.dims;
  if (rows === undefined || columns === undefined || tensor.dims.length !== 2)
    throw new Error(`Expected a 2-D weight, got ${tensor.name} [${tensor.dims.join(', ')}]`);
  const data = tensor.data as Float32Array;
  const groups = perRow ? rows : columns;
  const maxAbs = new Float32Array(groups);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < columns; c++) {
      const group = perRow ? r : c;
      const magnitude = Math.abs(data[r * columns + c] ?? 0);
      if (magnitude > (maxAbs[group] ?? 0)) maxAbs[group] = magnitude;
    }
  }
  const scale = maxAbs.map((m) => (m > 0 ? m / WEIGHT_RANGE : 1));
  const values = new Int8Array(data.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < columns; c++) {
      const i = r * columns + c;
      const q = Math.round((data[i] ?? 0) / (scale[perRow ? r : c] ?? 1));
      values[i] = Math.max(-WEIGHT_RANGE, Math.min(WEIGHT_RANGE, q));
    }
  }
  return {
    values: { name: `${tensor.name}_quantized`, dataType: DataType.Int8, dims: [rows, columns], data: values },
    scale: { name: `${tensor.name}_scale`, dataType: DataType.Float, dims: [groups], data: scale },
    ...(perRow
      ? {}
      : {
          zeroPoint: {
            name: `${tensor.name}_zero_point`,
            dataType: DataType.Int8,
            dims: [groups],
            data: new Int8Array(groups),
          },
        }),
  };
}

function isFloatInitializer(graph: Graph, name: string | undefined, rank: number): name is string {
  if (name === undefined) return false;
  const tensor = graph.initializers.get(name);
  return tensor !== undefined && tensor.dataType === DataType.Float && tensor.dims.length === rank;
}

/**
 * Returns a quantised copy of `graph` (the input is not modified). Pass the same `cache` when
 * quantising several graphs over the same weights, so each weight is quantised once.
 */
export function quantizeDynamic(graph: Graph, cache: QuantizationCache = new Map()): Graph {
  const consumers = new Map<string, GraphNode[]>();
  for (const node of graph.nodes) {
    for (const input of node.inputs) consumers.set(input, [...(consumers.get(input) ?? []), node]);
  }
  const graphOutputs = new Set(graph.outputs.map((output) => output.name));
  const added = new Map<string, Tensor[]>();
  const quantized = (name: string, perRow: boolean): Quantized => {
    const tensor = graph.initializers.get(name);
    if (tensor === undefined) throw new Error(`No initializer ${name}`);
    let tensors = cache.get(name);
    if (tensors === undefined) {
      const q = quantizeSymmetric(tensor, perRow);
      tensors = q.zeroPoint === undefined ? [q.values, q.scale] : [q.values, q.scale, q.zeroPoint];
      cache.set(name, tensors);
    }
    added.set(name, tensors);
    const [values, scale, zeroPoint] = tensors;
    if (values === undefined || scale === undefined) throw new Error(`Corrupt quantisation cache entry for ${name}`);
    return zeroPoint === undefined ? { values, scale } : { values, scale, zeroPoint };
  };

  const extra: Tensor[] = [];
  const lastAxisName = 'quantization_unsqueeze_axes';
  const lastAxis = (): string => {
    if (!extra.some((t) => t.name === lastAxisName))
      extra.push({ name: lastAxisName, dataType: DataType.Int64, dims: [1], data: BigInt64Array.of(-1n) });
    return lastAxisName;
  };

  const removed = new Set<GraphNode>();
  const nodes: GraphNode[] = [];
  for (const node of graph.nodes) {
    if (removed.has(node)) continue;
    const [a, b] = node.inputs;
    if (node.opType === 'MatMul' && a !== undefined && isFloatInitializer(graph, b, 2)) {
      const q = quantized(b, false);
      const output = node.outputs[0] ?? '';
      const next = consumers.get(output);
      const add = next?.length === 1 && !graphOutputs.has(output) && next[0]?.opType === 'Add' ? next[0] : undefined;
      const bias = add?.inputs.find((input) => input !== output);
      const fuseBias =
        add !== undefined &&
        isFloatInitializer(graph, bias, 1) &&
        graph.initializers.get(bias)?.dims[0] === q.values.dims[1];
      if (fuseBias) removed.add(add);
      nodes.push({
        name: `${node.name}_quant`,
        opType: 'DynamicQuantizeMatMul',
        domain: MICROSOFT_DOMAIN,
        inputs: [
          a,
          q.values.name,
          q.scale.name,
          q.zeroPoint?.name ?? '',
          ...(fuseBias && bias !== undefined ? [bias] : []),
        ],
        outputs: fuseBias ? [...add.outputs] : [...node.outputs],
        attributes: [],
      });
      continue;
    }
    const axis = node.attributes.find((attribute) => attribute.name === 'axis');
    if (
      node.opType === 'Gather' &&
      isFloatInitializer(graph, a, 2) &&
      b !== undefined &&
      (axis === undefined || axis.value === 0)
    ) {
      const q = quantized(a, true);
      const rows = `${node.name}_quantized_rows`;
      const rowScale = `${node.name}_row_scale`;
      const output = node.outputs[0] ?? '';
      nodes.push(
        {
          name: `${node.name}_quant`,
          opType: 'Gather',
          domain: '',
          inputs: [q.values.name, b],
          outputs: [rows],
          attributes: [attr.int('axis', 0)],
        },
        {
          name: `${node.name}_scale`,
          opType: 'Gather',
          domain: '',
          inputs: [q.scale.name, b],
          outputs: [rowScale],
          attributes: [attr.int('axis', 0)],
        },
        {
          name: `${node.name}_cast`,
          opType: 'Cast',
          domain: '',
          inputs: [rows],
          outputs: [`${rows}_float`],
          attributes: [attr.int('to', DataType.Float)],
        },
        {
          name: `${node.name}_unsqueeze`,
          opType: 'Unsqueeze',
          domain: '',
          inputs: [rowScale, lastAxis()],
          outputs: [`${rowScale}_unsqueezed`],
          attributes: [],
        },
        {
          name: `${node.name}_dequantize`,
          opType: 'Mul',
          domain: '',
          inputs: [`${rows}_float`, `${rowScale}_unsqueezed`],
          outputs: [output],
          attributes: [],
        },
      );
      continue;
    }
    nodes.push(node);
  }

  const used = new Set(nodes.flatMap((node) => node.inputs));
  const initializers = new Map<string, Tensor>();
  for (const [name, tensor] of graph.initializers) {
    for (const replacement of added.get(name) ?? []) initializers.set(replacement.name, replacement);
    if (used.has(name)) initializers.set(name, tensor);
  }
  for (const tensor of extra) initializers.set(tensor.name, tensor);
  return { ...graph, nodes, initializers };
}

/** Whether a graph needs the com.microsoft opset (it has contrib ops). */
export function usesMicrosoftDomain(graph: Graph): boolean {
  return graph.nodes.some((node) => node.domain === MICROSOFT_DOMAIN);
}
