/**
 * Headless Chromium for the dashboard's browser tests, driven by
 * playwright-core: Debian's /usr/bin/chromium (CHROMIUM_PATH overrides). Where
 * it is missing the tests skip with the reason printed, except under CI=true,
 * where a missing browser fails them (.ci/run installs it).
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Why the browser tests cannot run here, or undefined when they can. */
export function browserMissing(): string | undefined {
  if (existsSync(CHROMIUM_PATH)) return undefined;
  const reason = `no Chromium at ${CHROMIUM_PATH} (apt-get install chromium, or set CHROMIUM_PATH)`;
  if (process.env.CI === 'true') throw new Error(`browser tests cannot run under CI: ${reason}`);
  return reason;
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

export interface WatchedPage {
  page: Page;
  context: BrowserContext;
  /** Console errors and uncaught exceptions seen so far. */
  errors: string[];
  close(): Promise<void>;
}

/**
 * A page in its own context (its own localStorage), with `token` stored the
 * way the dashboard stores it, and every console error and page error kept.
 */
export async function openPage(
  browser: Browser,
  options: { token?: string; width?: number; height?: number } = {},
): Promise<WatchedPage> {
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1280, height: options.height ?? 800 },
  });
  if (options.token !== undefined) {
    // A script string: this file is type-checked without the DOM's types.
    await context.addInitScript({
      content: `localStorage.setItem('agentq.token', ${JSON.stringify(options.token)});`,
    });
  }
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  return { page, context, errors, close: () => context.close() };
}

/** Where the setup saves screenshots: AGENTQ_SCREENSHOTS_DIR, default .agentq/screenshots. */
export async function screenshotPath(name: string): Promise<string> {
  const dir = path.resolve(process.env.AGENTQ_SCREENSHOTS_DIR ?? '.agentq/screenshots');
  await mkdir(dir, { recursive: true });
  return path.join(dir, name);
}
