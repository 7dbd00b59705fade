import { describe, expect, it } from 'vitest';
import {
  blockSource,
  compareOutput,
  DocMarkerError,
  docLine,
  extractBlocks,
} from '../support/doc-blocks.js';

const md = (...lines: string[]): string => lines.join('\n');

describe('extractBlocks', () => {
  it('finds ts blocks with their fence line, and leaves other languages alone', () => {
    const blocks = extractBlocks(
      'x.md',
      md(
        '# T',
        '',
        '```sh',
        'npm test',
        '```',
        '',
        '```ts',
        'const a = 1;',
        '```',
        '```typescript',
        'let b;',
        '```',
      ),
    );
    expect(blocks.map((b) => [b.line, b.lang, b.code, b.mode])).toEqual([
      [7, 'ts', 'const a = 1;', 'check'],
      [10, 'typescript', 'let b;', 'check'],
    ]);
  });

  it('reads a marker with hidden lines, and maps lines back to the Markdown', () => {
    const text = md(
      'Intro',
      '<!-- doctest: partial',
      "import type { BackendPool } from 'loadwise';",
      'declare const pool: BackendPool;',
      '-->',
      '',
      '```ts',
      'pool.stats();',
      'pool.explain();',
      '```',
    );
    const [block] = extractBlocks('x.md', text);
    expect(block?.mode).toBe('partial');
    expect(block?.hidden).toEqual([
      "import type { BackendPool } from 'loadwise';",
      'declare const pool: BackendPool;',
    ]);
    expect(blockSource(block!).split('\n')).toHaveLength(4);
    // Source lines 1-2 are the hidden lines (Markdown 3-4); 3-4 the code (Markdown 8-9).
    expect([1, 2, 3, 4].map((n) => docLine(block!, n))).toEqual([3, 4, 8, 9]);
  });

  it('ties an output fence to the run block before it', () => {
    const text = md(
      '<!-- doctest: run -->',
      '```ts',
      "console.log('hi');",
      '```',
      '',
      '<!-- doctest: output -->',
      '```text',
      'hi',
      '```',
    );
    const [block] = extractBlocks('x.md', text);
    expect(block?.mode).toBe('run');
    expect(block?.output).toEqual({ text: 'hi', line: 7 });
  });

  it('takes a skip with its reason', () => {
    const [block] = extractBlocks(
      'x.md',
      md('<!-- doctest: skip: needs a GPU -->', '```ts', 'x', '```'),
    );
    expect(block).toMatchObject({ mode: 'skip', reason: 'needs a GPU' });
  });

  it.each([
    [
      'an unknown mode',
      md('<!-- doctest: partal -->', '```ts', 'x', '```'),
      'x.md:1: unknown doctest mode "partal"',
    ],
    [
      'a skip without a reason',
      md('<!-- doctest: skip -->', '```ts', 'x', '```'),
      'x.md:1: say why',
    ],
    [
      'a marker with text before its block',
      md('<!-- doctest: partial -->', 'words', '```ts', 'x', '```'),
      'x.md:1: a doctest marker that no ts block follows',
    ],
    [
      'a marker before a non-ts fence',
      md('<!-- doctest: run -->', '```sh', 'x', '```'),
      'x.md:1: a doctest marker before a "sh" fence',
    ],
    [
      'an output after a block that does not run',
      md('```ts', 'x', '```', '<!-- doctest: output -->', '```text', 'y', '```'),
      'x.md:4: an output block follows a block that is not marked run',
    ],
    [
      'an unclosed marker',
      md('<!-- doctest: partial', 'declare const x: number;', '```ts', 'x', '```'),
      'x.md:1: unclosed doctest marker',
    ],
    ['an unclosed fence', md('text', '```ts', 'x'), 'x.md:2: unclosed code fence'],
  ])('refuses %s, naming the file and line', (_what, text, message) => {
    expect(() => extractBlocks('x.md', text)).toThrow(DocMarkerError);
    expect(() => extractBlocks('x.md', text)).toThrow(message);
  });
});

describe('compareOutput', () => {
  it('matches line by line, ignoring trailing spaces and surrounding blank lines', () => {
    expect(compareOutput('a\nb\n', '\na  \nb\n\n')).toBeUndefined();
    expect(compareOutput('a\nb', 'a\nc')).toContain('printed:\na\nc');
  });

  it('lets a line "..." stand for any number of lines', () => {
    expect(compareOutput('first\n...\nlast', 'first\nx\ny\nlast')).toBeUndefined();
    expect(compareOutput('first\n...\nlast', 'first\nlast')).toBeUndefined();
    expect(compareOutput('first\n...\nlast', 'first\nx\nlost')).toBeDefined();
    expect(compareOutput('...', 'anything\nat all')).toBeUndefined();
  });
});
