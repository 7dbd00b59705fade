/**
 * Finds the TypeScript blocks of the Markdown docs and what their markers ask for. The marker
 * convention (docs/README.md, "Code in the docs"): an HTML comment right before a ```ts fence,
 * invisible on GitHub,
 *
 *     <!-- doctest: partial
 *     import { BackendPool } from 'loadwise';
 *     declare const pool: BackendPool;
 *     -->
 *
 * whose first line names the mode (`partial`, `run`, `skip: why`) and whose other lines are
 * hidden TypeScript put before the block (what a partial block assumes; what a run needs). A
 * `run` block may be followed by a fence marked `<!-- doctest: output -->`, the printed output
 * it must produce. A block without a marker must type-check on its own.
 */

/** What a block's marker asks for. */
export type BlockMode = 'check' | 'partial' | 'run' | 'skip';

export interface DocBlock {
  /** The Markdown file, as given. */
  readonly file: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  readonly lang: string;
  readonly code: string;
  readonly mode: BlockMode;
  /** Why a `skip` block is skipped. */
  readonly reason: string | undefined;
  /** Hidden lines from the marker, put before the code. */
  readonly hidden: readonly string[];
  /** 1-based line of the first hidden line (the marker's second line). */
  readonly hiddenLine: number;
  /** The output a `run` block must print, and the line of its fence. */
  readonly output: { readonly text: string; readonly line: number } | undefined;
}

/** A marker or fence the extractor cannot make sense of: a failure with its place. */
export class DocMarkerError extends Error {
  constructor(file: string, line: number, message: string) {
    super(`${file}:${line}: ${message}`);
    this.name = 'DocMarkerError';
  }
}

interface Fence {
  readonly line: number;
  readonly lang: string;
  readonly body: string;
  readonly endLine: number;
}

interface Marker {
  readonly line: number;
  readonly endLine: number;
  readonly head: string;
  readonly hidden: string[];
}

const TS_LANGS = new Set(['ts', 'typescript']);
const MARKER_START = /^<!--\s*doctest:(.*)$/;

/** Every TypeScript block of `markdown`, with its marker applied. */
export function extractBlocks(file: string, markdown: string): DocBlock[] {
  const lines = markdown.split('\n');
  const fences: Fence[] = [];
  const markers: Marker[] = [];
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i]!;
    const open = /^(`{3,}|~{3,})\s*([^`\s]*)/.exec(text);
    if (open !== null) {
      const fence = open[1]!;
      const body: string[] = [];
      let j = i + 1;
      while (j < lines.length && !isClosing(lines[j]!, fence)) body.push(lines[j++]!);
      if (j === lines.length) throw new DocMarkerError(file, i + 1, 'unclosed code fence');
      fences.push({
        line: i + 1,
        lang: open[2]!.toLowerCase(),
        body: body.join('\n'),
        endLine: j + 1,
      });
      i = j;
      continue;
    }
    const start = MARKER_START.exec(text.trim());
    if (start !== null) {
      const marker = readMarker(file, lines, i, start[1]!);
      markers.push(marker);
      i = marker.endLine - 1;
    }
  }

  const blocks: DocBlock[] = [];
  const used = new Set<Marker>();
  for (let f = 0; f < fences.length; f++) {
    const fence = fences[f]!;
    const marker = markers.find(
      (m) => m.endLine < fence.line && blankBetween(lines, m.endLine, fence.line),
    );
    if (!TS_LANGS.has(fence.lang)) {
      if (marker !== undefined && !marker.head.startsWith('output')) {
        throw new DocMarkerError(
          file,
          marker.line,
          `a doctest marker before a "${fence.lang || 'plain'}" fence: only ts blocks are checked`,
        );
      }
      continue;
    }
    if (marker !== undefined) used.add(marker);
    const { mode, reason } = parseHead(file, marker);
    let output: DocBlock['output'];
    const next = fences[f + 1];
    if (next !== undefined) {
      const outMarker = markers.find(
        (m) =>
          m.head === 'output' &&
          m.line > fence.endLine &&
          m.endLine < next.line &&
          blankBetween(lines, fence.endLine, m.line) &&
          blankBetween(lines, m.endLine, next.line),
      );
      if (outMarker !== undefined) {
        used.add(outMarker);
        if (mode !== 'run') {
          throw new DocMarkerError(
            file,
            outMarker.line,
            'an output block follows a block that is not marked run',
          );
        }
        output = { text: next.body, line: next.line };
      }
    }
    if (mode === 'skip' && marker !== undefined && marker.hidden.length > 0) {
      throw new DocMarkerError(file, marker.line, 'a skipped block takes no hidden lines');
    }
    blocks.push({
      file,
      line: fence.line,
      lang: fence.lang,
      code: fence.body,
      mode,
      reason,
      hidden: marker?.hidden ?? [],
      hiddenLine: (marker?.line ?? 0) + 1,
      output,
    });
  }
  for (const m of markers) {
    if (!used.has(m)) {
      throw new DocMarkerError(
        file,
        m.line,
        'a doctest marker that no ts block follows (only blank lines may sit between them)',
      );
    }
  }
  return blocks;
}

function isClosing(line: string, fence: string): boolean {
  const t = line.trim();
  return t.length >= fence.length && t.startsWith(fence) && /^[`~]+$/.test(t) && t[0] === fence[0];
}

function blankBetween(lines: readonly string[], afterLine: number, beforeLine: number): boolean {
  // Lines are 1-based: the lines strictly between `afterLine` and `beforeLine`.
  for (let k = afterLine; k < beforeLine - 1; k++) if (lines[k]!.trim() !== '') return false;
  return true;
}

function readMarker(file: string, lines: readonly string[], i: number, rest: string): Marker {
  const inline = rest.indexOf('-->');
  if (inline !== -1) {
    return { line: i + 1, endLine: i + 1, head: rest.slice(0, inline).trim(), hidden: [] };
  }
  const hidden: string[] = [];
  let j = i + 1;
  while (j < lines.length && lines[j]!.trim() !== '-->') {
    if (lines[j]!.includes('-->')) {
      throw new DocMarkerError(file, j + 1, 'end a doctest marker with "-->" on a line of its own');
    }
    hidden.push(lines[j++]!);
  }
  if (j === lines.length) throw new DocMarkerError(file, i + 1, 'unclosed doctest marker');
  return { line: i + 1, endLine: j + 1, head: rest.trim(), hidden };
}

function parseHead(
  file: string,
  marker: Marker | undefined,
): { mode: BlockMode; reason: string | undefined } {
  if (marker === undefined) return { mode: 'check', reason: undefined };
  const head = marker.head;
  if (head === 'partial' || head === 'run') {
    return { mode: head, reason: undefined };
  }
  if (head === 'output') {
    throw new DocMarkerError(
      file,
      marker.line,
      "an output marker goes before the fence that shows a run block's output, not before a ts block",
    );
  }
  const skip = /^skip:\s*(\S.*)$/.exec(head);
  if (skip !== null) return { mode: 'skip', reason: skip[1]!.trim() };
  if (head === 'skip')
    throw new DocMarkerError(
      file,
      marker.line,
      'say why a block is skipped: "doctest: skip: <reason>"',
    );
  throw new DocMarkerError(
    file,
    marker.line,
    `unknown doctest mode "${head}" (partial, run, skip: <reason>, output)`,
  );
}

/** The source checked for a block: its hidden lines, then its code. */
export function blockSource(block: DocBlock): string {
  return [...block.hidden, block.code].join('\n');
}

/** The doc line of line `n` (1-based) of {@link blockSource}. */
export function docLine(block: DocBlock, n: number): number {
  const h = block.hidden.length;
  return n <= h ? block.hiddenLine + n - 1 : block.line + (n - h);
}

/**
 * Compares printed output with what the guide shows: line by line, trailing spaces ignored, a
 * leading and trailing blank line ignored; a line `...` in the expected text stands for any
 * number of lines (none included). Returns undefined on a match, else a description.
 */
export function compareOutput(expected: string, actual: string): string | undefined {
  const want = trimLines(expected);
  const got = trimLines(actual);
  if (matchFrom(want, 0, got, 0)) return undefined;
  return `expected:\n${want.join('\n')}\n\nprinted:\n${got.join('\n')}`;
}

function trimLines(text: string): string[] {
  const lines = text.split('\n').map((l) => l.trimEnd());
  while (lines.length > 0 && lines[0] === '') lines.shift();
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function matchFrom(want: readonly string[], i: number, got: readonly string[], j: number): boolean {
  if (i === want.length) return j === got.length;
  if (want[i] === '...') {
    for (let k = j; k <= got.length; k++) if (matchFrom(want, i + 1, got, k)) return true;
    return false;
  }
  return j < got.length && want[i] === got[j] && matchFrom(want, i + 1, got, j + 1);
}
