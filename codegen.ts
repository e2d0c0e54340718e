/**
 * GraphQL Code Generator: typed documents for the operations in test/**\/*.graphql, from the committed
 * schema (schema/schema.graphql). `npm run codegen` after changing either; the output in
 * test/generated/ is committed. Clients can point the same config at their own documents.
 */
import type { CodegenConfig } from '@graphql-codegen/cli';

const config: CodegenConfig = {
  schema: 'schema/schema.graphql',
  documents: ['test/**/*.graphql'],
  ignoreNoDocuments: false,
  generates: {
    'test/generated/': {
      preset: 'client',
      presetConfig: {
        // Tests read fragment fields directly; masking is for UI components.
        fragmentMasking: false,
      },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        // NodeNext ESM: generated relative imports need their `.js`.
        emitLegacyCommonJSImports: false,
        scalars: { DateTime: 'string', JSON: 'unknown', Vector: 'number[]' },
        avoidOptionals: { field: true, inputValue: false, object: true, defaultValue: false },
      },
    },
  },
};

export default config;
