// Lint: the recommended JS and TypeScript rules, plus the layering rule that
// keeps api/ and worker/ from importing each other (both may use shared/).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', '.agentq/', 'dist/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'no-eval': 'error',
      'no-new-func': 'error',
    },
  },
  {
    files: ['api/**/*.ts', 'api/**/*.tsx'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['**/worker/**', '../worker/*'] }] },
  },
  {
    // The dashboard's client modules run in the browser.
    files: ['api/dashboard/assets/**/*.js'],
    languageOptions: { globals: globals.browser },
  },
  {
    files: ['worker/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['**/api/**', '../api/*'] }] },
  },
  {
    files: ['shared/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['**/api/**', '**/worker/**'] }] },
  },
);
