// @ts-check
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'client/dist/', 'packages/client/dist/', 'node_modules/', 'coverage/', '**/*.js', '**/*.mjs', 'bench/results/'] },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: false } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  { files: ['test/**/*.ts', 'bench/**/*.ts', 'client/**/*.ts', '**/*.spec.ts'], rules: { 'no-console': 'off' } },
  {
    // @nestjs/swagger is loaded on the first request for the OpenAPI document, not at start-up.
    files: ['src/**/*.ts'],
    ignores: ['**/*.spec.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [{ name: '@nestjs/swagger', message: 'Use the decorators of src/http/api-docs.ts (applied when the document is first asked for); only types may be imported here.', allowTypeImports: true }],
        },
      ],
    },
  },
);
