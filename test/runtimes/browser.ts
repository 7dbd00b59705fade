/**
 * Runs the scenario's browser bundle in headless Chromium, in a page and in a dedicated worker,
 * and reads the results back through the DevTools protocol (puppeteer-core over a pipe).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';

/** Flags for a closed network and a machine without a display or a sandbox. */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export interface PageRun {
  /** What the page put in `globalThis.__loadwiseResult`, or undefined when it never did. */
  readonly result: unknown;
  /** Uncaught errors of the page or worker, and the runner's own (a timeout). */
  readonly errors: readonly string[];
  /** Console errors (Chromium logs every refused or reset request), shown on failure. */
  readonly console: readonly string[];
}

export interface ChromiumRun {
  readonly version: string;
  readonly pages: Readonly<Record<string, PageRun>>;
}

/** Opens each URL in a fresh tab of one headless Chromium and waits for its result. */
export async function runInChromium(
  executablePath: string,
  urls: Readonly<Record<string, string>>,
  timeoutMs: number,
): Promise<ChromiumRun> {
  const userDataDir = mkdtempSync(join(tmpdir(), 'loadwise-chromium-'));
  const browser = await puppeteer.launch({
    executablePath,
    headless: true,
    pipe: true,
    userDataDir,
    args: CHROMIUM_ARGS,
    timeout: timeoutMs,
  });
  try {
    const version = await browser.version();
    const pages: Record<string, PageRun> = {};
    for (const [name, url] of Object.entries(urls)) {
      const page = await browser.newPage();
      const errors: string[] = [];
      const console: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') console.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(String(e)));
      let result: unknown;
      try {
        await page.goto(url, { waitUntil: 'load', timeout: timeoutMs });
        await page.waitForFunction('globalThis.__loadwiseResult !== undefined', {
          timeout: timeoutMs,
          polling: 100,
        });
        result = await page.evaluate('globalThis.__loadwiseResult');
      } catch (error) {
        errors.push(`runner: ${String(error)}`);
      }
      pages[name] = { result, errors, console };
      await page.close();
    }
    return { version, pages };
  } finally {
    await browser.close();
    rmSync(userDataDir, { recursive: true, force: true });
  }
}
