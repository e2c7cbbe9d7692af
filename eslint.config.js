// ESLint: typescript-eslint's type-aware rules over src/, test/ and scripts/. `npm run lint`
// (run by `npm test`) keeps them true; prettier owns the layout.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'native-helpers/build/', 'bin/', 'scripts/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  // The pipeline's one-way rule (docs/architecture.md): the stages below app/ never import the use
  // cases or the CLI, and use cases never import the CLI.
  {
    files: ['src/**/*.ts'],
    ignores: ['src/cli/**', 'src/app/**', 'src/api/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/app/*', '**/cli/*'],
              message: 'stages below app/ must not import app/ or cli/ (docs/architecture.md)',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/runtime/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/app/*', '**/cli/*'],
              message: 'stages below app/ must not import app/ or cli/ (docs/architecture.md)',
            },
            {
              group: ['**/network/*'],
              message: 'the runtime does not depend on the network stage: shared shapes live in oci/network.ts',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/cli/commands/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/cli/main.js', '../main.js'],
              message: 'commands import cli/output.ts; main.ts imports the commands',
            },
          ],
        },
      ],
    },
  },
  // The Engine API is a front end beside the CLI: it calls app/ use cases, never the CLI (cli/format.ts's
  // wording helpers and cli/build-output.ts's builder text, both pure listeners/formatters, aside).
  {
    files: ['src/api/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/cli/*', '!**/cli/format.js', '!**/cli/build-output.js'],
              message: 'the Engine API calls app/ use cases, not the CLI (docs/architecture.md)',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/app/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/cli/*'], message: 'use cases must not import cli/ (docs/architecture.md)' }] },
      ],
    },
  },
  // Tests read loosely typed JSON (inspect output, registry answers) on purpose.
  { files: ['test/**/*.ts'], rules: { '@typescript-eslint/no-explicit-any': 'off' } },
);
