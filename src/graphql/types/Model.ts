import { Field, Float, Int, ObjectType } from 'type-graphql';
import type { LoadPolicy, ModelInfo, Precision, ScoringKind } from '../../clip/index.js';
import { ModelLayoutEnum, ModelLoadEnum, ModelStatusEnum, PrecisionEnum, ScoringEnum } from './enums.js';

@ObjectType('Model', { description: 'A configured CLIP model.' })
export class ModelObject {
  @Field(() => String, { description: 'The name jobs use (`model` argument).' })
  name!: string;

  @Field(() => String, {
    description: 'Where it came from: catalogue name, hub id (owner/name@rev) or local directory.',
  })
  source!: string;

  @Field(() => PrecisionEnum)
  precision!: Precision;

  @Field(() => ModelStatusEnum)
  status!: ModelInfo['status'];

  @Field(() => Boolean, { description: 'Loaded and warmed: jobs run on it without waiting.' })
  ready!: boolean;

  @Field(() => ModelLoadEnum, {
    description: 'When it is loaded: EAGER at server start, LAZY on its first job (the `;load=lazy` model option).',
  })
  load!: LoadPolicy;

  @Field(() => Float, {
    nullable: true,
    description:
      'Bytes of ONNX graph its sessions hold (each image-tower replica counted), from its last load: the weights, which dominate its memory; null until loaded.',
  })
  sessionBytes!: number | null;

  @Field(() => Boolean, { description: 'Whether jobs without `model` use it.' })
  isDefault!: boolean;

  @Field(() => Int, { nullable: true, description: 'Size of the joint embedding space; null until loaded.' })
  embeddingSize!: number | null;

  @Field(() => Int, { nullable: true, description: 'Text context length, in tokens.' })
  contextLength!: number | null;

  @Field(() => Int, { nullable: true, description: 'Input image size, in pixels per side.' })
  imageSize!: number | null;

  @Field(() => Float, {
    nullable: true,
    description:
      'The trained scale applied to cosine similarities: the softmax temperature (SOFTMAX) or the sigmoid slope (SIGMOID); null until loaded.',
  })
  logitScale!: number | null;

  @Field(() => ScoringEnum, {
    nullable: true,
    description: 'SOFTMAX (CLIP: rows sum to 1) or SIGMOID (SigLIP: each class on its own); null until loaded.',
  })
  scoring!: ScoringKind | null;

  @Field(() => Float, {
    nullable: true,
    description: "The trained bias of a SIGMOID model's logits; null for SOFTMAX models and until loaded.",
  })
  logitBias!: number | null;

  @Field(() => ModelLayoutEnum, {
    nullable: true,
    description: 'The file layout it was loaded from; null until loaded.',
  })
  layout!: string | null;

  @Field(() => String, { nullable: true, description: 'Why loading failed, when FAILED.' })
  error!: string | null;

  static from(info: ModelInfo, defaultModelName: string): ModelObject {
    const object = new ModelObject();
    object.name = info.name;
    object.source = info.source;
    object.precision = info.precision;
    object.status = info.status;
    object.ready = info.status === 'ready';
    object.load = info.load ?? 'eager';
    object.sessionBytes = info.sessionBytes ?? null;
    object.isDefault = info.name === defaultModelName;
    object.embeddingSize = info.embeddingSize;
    object.contextLength = info.contextLength;
    object.imageSize = info.imageSize;
    object.logitScale = info.logitScale;
    object.scoring = info.scoring ?? null;
    object.logitBias = info.logitBias ?? null;
    object.layout = info.layout ?? null;
    object.error = info.error;
    return object;
  }
}
