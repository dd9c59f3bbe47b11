// A real browser for the playground tests: Debian's chromium, headless,
// driven by puppeteer-core, and helpers that use the page the way a person
// does (click into an editor, select all, type).

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { WAIT_MS } from './harness.js';

/**
 * Where chromium is: $CHROMIUM_PATH when set, else /usr/bin/chromium or
 * chromium on the PATH. Returns { path } or, when there is none, { skip } (a
 * reason) or, with CI=true, { missing } (a failure: CI installs it, see
 * .ci/run).
 */
export function findChromium() {
  let reason = 'chromium is not installed (apt-get install -y chromium, or set CHROMIUM_PATH)';
  if (process.env.CHROMIUM_PATH) {
    if (existsSync(process.env.CHROMIUM_PATH)) return { path: process.env.CHROMIUM_PATH };
    reason = `CHROMIUM_PATH=${process.env.CHROMIUM_PATH} does not exist`;
  } else {
    if (existsSync('/usr/bin/chromium')) return { path: '/usr/bin/chromium' };
    try {
      const found = execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim();
      if (found) return { path: found };
    } catch {
      // not on the PATH
    }
  }
  return process.env.CI === 'true' ? { missing: `CI=true but ${reason}` } : { skip: reason };
}

/** Launches headless chromium. */
export async function launch(executablePath) {
  const { default: puppeteer } = await import('puppeteer-core');
  return puppeteer.launch({
    executablePath,
    headless: true,
    // CI runs as root, where chromium's sandbox cannot start.
    args: ['--no-sandbox', '--window-size=1400,900'],
    defaultViewport: { width: 1400, height: 900 },
    protocolTimeout: 30_000,
  });
}

/** A fresh directory for screenshots, kept after the run so they can be looked at. */
export function screenshotDir() {
  return mkdtempSync(path.join(tmpdir(), 'jobchat-e2e-screenshots-'));
}

/**
 * Records what a page reports that a clean page would not: console errors
 * and warnings, uncaught exceptions, Content-Security-Policy violations
 * (from the securitypolicyviolation DOM event, which fires for every
 * violation, and from chromium's own console message about it) and failed
 * requests.
 */
export async function watchConsole(page, name) {
  const problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warn' || m.type() === 'warning') {
      problems.push(`${name}: console.${m.type()}: ${m.text()}`);
    }
  });
  page.on('pageerror', (e) => problems.push(`${name}: uncaught: ${e.message}`));
  page.on('requestfailed', (r) => {
    // A WebSocket the server closes, or a request cut by navigation, is not a failure of the page.
    if (r.resourceType() !== 'websocket') problems.push(`${name}: request failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  await page.exposeFunction('__e2eViolation', (v) => problems.push(`${name}: CSP violation: ${v}`));
  await page.evaluateOnNewDocument(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__e2eViolation(`${e.effectiveDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile}:${e.lineNumber}: ${e.sample}`);
    });
  });
  return problems;
}

/** The selectors of GraphiQL 4's editors. */
export const EDITOR = {
  query: '.graphiql-query-editor .CodeMirror',
  headers: 'section.graphiql-editor-tool[aria-label="Headers"] .graphiql-editor:not(.hidden) .CodeMirror',
};

/**
 * Replaces an editor's text the way a person does: click into it, select
 * all, type. Returns what the editor then holds. GraphiQL closes brackets
 * and quotes as one types; typing the closing one steps over it, so the
 * text comes out as typed, which the caller can check.
 */
export async function typeInto(page, selector, text) {
  await page.bringToFront();
  await page.waitForSelector(selector, { visible: true, timeout: WAIT_MS });
  await page.click(selector);
  await page.keyboard.down('Control');
  await page.keyboard.press('KeyA');
  await page.keyboard.up('Control');
  await page.keyboard.press('Backspace');
  await page.keyboard.type(text);
  await page.keyboard.press('Escape'); // closes an autocompletion list, if one is open
  return page.$eval(selector, (el) => el.CodeMirror.getValue());
}

/**
 * A screenshot of page into dir/name.png. A page must be in front to be
 * painted (a background tab's screenshot never finishes).
 */
export async function screenshot(page, dir, name) {
  await page.bringToFront();
  await page.mouse.move(1, 1); // no tooltip of the last button clicked
  const file = path.join(dir, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}
