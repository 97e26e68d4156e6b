// @ts-check
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

/**
 * The layers of lib/ (ARCHITECTURE.md): the core imports nothing outside itself; a feature imports
 * the core, its own files, and of another feature only its public service (`*.service.js`); the
 * module (composition) imports the core and each feature's definition (`*.feature.js`).
 */
export const layers = [
  {
    files: ['lib/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['../*', '../*/*'],
              message: 'lib/core is the ground floor: it imports nothing from a feature, the module or the index.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['lib/*/**/*.ts'],
    ignores: ['lib/core/**', 'lib/module/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['../*.js', '../*/*', '!../core/*', '!../*/*.service.js'],
              message: 'A feature imports the core, its own files, and of another feature only its public service (<feature>.service.js).',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['lib/module/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['../*.js', '../*/*', '!../core/*', '!../*/*.feature.js'],
              message: 'The module composes the core and the features through their definitions (<feature>.feature.js).',
            },
          ],
        },
      ],
    },
  },
];

export default tseslint.config(
  { ignores: ['dist/', '.build/', 'coverage/', 'node_modules/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // Type-aware rules that catch real bugs here.
      '@typescript-eslint/no-floating-promises': 'error',
      // The session store's methods return a Promise when called without a callback, by design.
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { inheritedMethods: false } }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
    },
  },
  {
    // Tests, the sample and the bench may read untyped JSON and peers' APIs loosely; lib/ may not.
    files: ['test/**/*.ts', 'sample/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // The sample dashboard's page script runs in the browser as it is, beside uPlot's global.
    files: ['sample/dashboard/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: Object.fromEntries(['document', 'EventSource', 'ResizeObserver', 'setTimeout', 'uPlot'].map((name) => [name, 'readonly'])),
    },
  },
  ...layers,
  prettier,
);
