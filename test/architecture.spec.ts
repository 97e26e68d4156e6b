import { fileURLToPath } from 'node:url';
import { ESLint, type Linter } from 'eslint';
import tseslint from 'typescript-eslint';
import { beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../', import.meta.url));

/**
 * The layers of lib/ (ARCHITECTURE.md) are lint rules: these cases are what `npm run lint` says of
 * an import in each place, checked with the project's own rules (`layers` in eslint.config.js).
 */
describe('the layers of lib/, as the linter enforces them', () => {
  let eslint: ESLint;
  beforeAll(async () => {
    const configPath: string = '../eslint.config.js';
    const { layers } = (await import(configPath)) as { layers: Linter.Config[] };
    eslint = new ESLint({
      cwd: root,
      overrideConfigFile: true,
      overrideConfig: [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser } }, ...layers],
    });
  });

  const verdict = async (file: string, from: string): Promise<string> => {
    const [result] = await eslint.lintText(`import '${from}';\n`, { filePath: `${root}${file}` });
    return result.messages.length === 0
      ? 'allowed'
      : result.messages
          .map((message) => message.message.replace(/^'[^']+' import is restricted from being used by a pattern\. /, ''))
          .join('; ');
  };

  it.each([
    ['lib/core/keys.ts', './errors.js', 'allowed'],
    ['lib/cache/cache.service.ts', '../core/keys.js', 'allowed'],
    ['lib/cache/cache.service.ts', './cache.l1.js', 'allowed'],
    ['lib/cache/cache.service.ts', '../pubsub/pubsub.service.js', 'allowed'],
    ['lib/module/features.ts', '../cache/cache.feature.js', 'allowed'],
    ['lib/module/redis-patterns.module.ts', '../core/core.providers.js', 'allowed'],
    ['lib/index.ts', './cache/cache.l1.js', 'allowed'],
  ])('%s may import %s', async (file, from, expected) => {
    expect(await verdict(file, from)).toBe(expected);
  });

  it.each([
    ['lib/core/keys.ts', '../cache/cache.service.js', /^lib\/core is the ground floor/],
    ['lib/core/keys.ts', '../module/features.js', /^lib\/core is the ground floor/],
    ['lib/core/keys.ts', '../index.js', /^lib\/core is the ground floor/],
    [
      'lib/cache/cache.service.ts',
      '../pubsub/pubsub.options.js',
      /^A feature imports the core, its own files, and of another feature only its public service/,
    ],
    ['lib/session/session.service.ts', '../lock/lock.store.js', /^A feature imports the core/],
    ['lib/cache/cache.service.ts', '../module/features.js', /^A feature imports the core/],
    ['lib/cache/cache.service.ts', '../index.js', /^A feature imports the core/],
    ['lib/module/features.ts', '../cache/cache.service.js', /^The module composes the core and the features through their definitions/],
  ])('%s may not import %s', async (file, from, expected) => {
    expect(await verdict(file, from)).toMatch(expected);
  });
});
