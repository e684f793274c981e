// The playground in a real browser (Debian's Chromium through playwright-core), against the
// server's debug binary with a temporary SQLite database and the demo data. Every request that
// is not to the server's origin is blocked and recorded, and the test fails if there is one.
//
//   cd playground && npm ci && npm run e2e
//
// API_BIN (default ../target/debug/api) and CHROMIUM (default /usr/bin/chromium) say where
// the two programs are. Screenshots go to e2e/screenshots/.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const API_BIN = resolve(process.env.API_BIN ?? join(here, '../../target/debug/api'));
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const SCREENSHOTS = join(here, 'screenshots');
const ADMIN_PASSWORD = 'change-me-now'; // the admin tab's default variables
const STEP = 30_000; // ms any one step may take before the test fails

let server;
let serverLog = '';
let dataDir;
let browser;
let origin;
const offOrigin = [];
const problems = [];

function freePort() {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolvePort(port));
    });
  });
}

async function waitForHealth(url) {
  // Bounded: 240 tries 250 ms apart. A migration on a fresh SQLite file takes a few seconds.
  for (let attempt = 0; attempt < 240; attempt += 1) {
    if (server.exitCode !== null) break;
    try {
      const response = await fetch(`${url}/health`);
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the server did not come up at ${url}; its log:\n${serverLog}`);
}

before(async () => {
  assert.ok(existsSync(API_BIN), `no server binary at ${API_BIN}: run cargo build -p api first`);
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: apt-get install chromium`);
  mkdirSync(SCREENSHOTS, { recursive: true });
  dataDir = mkdtempSync(join(tmpdir(), 'playground-e2e-'));
  const port = await freePort();
  origin = `http://127.0.0.1:${port}`;
  // A clean environment, run in the temporary folder so no .env is read.
  server = spawn(API_BIN, [], {
    cwd: dataDir,
    env: {
      PATH: process.env.PATH,
      APP_ENV: 'development',
      APP_HOST: '127.0.0.1',
      APP_PORT: String(port),
      DATABASE_URL: `sqlite://${join(dataDir, 'e2e.db')}?mode=rwc`,
      SEED_DEMO_DATA: 'true',
      JOBS_ENABLED: 'false',
      ADMIN_BOOTSTRAP_PASSWORD: ADMIN_PASSWORD,
      RUST_LOG: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout.on('data', (chunk) => (serverLog += chunk));
  server.stderr.on('data', (chunk) => (serverLog += chunk));
  await waitForHealth(origin);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

after(async () => {
  await browser?.close();
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** A fresh browser context whose requests may only go to the server. */
async function openPage(path) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 860 } });
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(`${origin}/`)) return route.continue();
    offOrigin.push(url);
    return route.abort('blockedbyclient');
  });
  // What the CSP blocks does not always reach the console (a blocked <style> only breaks the
  // editor's look), so the page's own violation events are collected too.
  await context.addInitScript(() => {
    window.cspViolations = [];
    document.addEventListener('securitypolicyviolation', (event) => {
      window.cspViolations.push(`${event.effectiveDirective} blocked ${event.blockedURI || 'inline'}`);
    });
  });
  const page = await context.newPage();
  page.on('pageerror', (error) => problems.push(`${path}: page error: ${error.message}`));
  page.on('response', (response) => {
    if (response.status() >= 400) {
      problems.push(`${path}: ${response.status()} for ${response.request().method()} ${response.url()}`);
    }
  });
  page.on('console', (message) => {
    if (message.type() === 'error' || /Content Security Policy/i.test(message.text())) {
      problems.push(`${path}: console ${message.type()}: ${message.text()}`);
    }
  });
  await page.goto(`${origin}${path}`);
  // The operation editor (Monaco) has rendered: the bundle and its workers loaded.
  try {
    await page.locator('.graphiql-query-editor .monaco-editor .view-lines').first().waitFor({ timeout: STEP });
  } catch (error) {
    const shot = join(SCREENSHOTS, `${path.replaceAll('/', '_')}-not-loaded.png`);
    await page.screenshot({ path: shot });
    throw new Error(`${path}: the editor never appeared (see ${shot}); blocked: ${offOrigin.join(', ')}`, {
      cause: error,
    });
  }
  return { context, page };
}

/** Records the CSP violations the page saw, then closes it. */
async function closePage(path, { context, page }) {
  const violations = await page.evaluate(() => window.cspViolations);
  problems.push(...violations.map((violation) => `${path}: CSP: ${violation}`));
  await context.close();
}

/**
 * Waits until the response pane shows every one of `needles`; returns the pane's text. Monaco
 * renders only the visible lines, in any DOM order: they are put in order by their position.
 */
async function waitForResponse(page, ...needles) {
  // Runs in the page: the pane's text if it holds every one of `wanted`, otherwise false.
  const readPane = (wanted) => {
    const lines = [...document.querySelectorAll('.graphiql-response .view-lines .view-line')];
    const text = lines
      .map((line) => ({ top: parseFloat(line.style.top) || 0, text: line.textContent ?? '' }))
      .sort((a, b) => a.top - b.top)
      .map((line) => line.text.replace(/\u00a0/g, ' '))
      .join('\n');
    return wanted.every((needle) => text.includes(needle)) && text;
  };
  try {
    const shown = await page.waitForFunction(readPane, needles, { timeout: STEP });
    return await shown.jsonValue();
  } catch (error) {
    const shown = await page.evaluate(readPane, []);
    await page.screenshot({ path: join(SCREENSHOTS, 'response-not-shown.png') });
    throw new Error(`the response pane never showed ${JSON.stringify(needles)}; it shows:\n${shown}`, {
      cause: error,
    });
  }
}

async function runTab(page, name) {
  await page.locator('.graphiql-tab', { hasText: name }).first().click();
  await page.locator('.graphiql-execute-button').click();
}

test('the member playground signs in, shows me with the ledger, and signs in as someone else', async () => {
  const opened = await openPage('/graphql');
  const { page } = opened;
  assert.equal(await page.title(), 'Loyalty · member API');
  await page.screenshot({ path: join(SCREENSHOTS, 'member-loaded.png') });

  // The first tab is the login; running it signs the playground in.
  await runTab(page, 'Login');
  await waitForResponse(page, '"accessToken"', '"memberNo": "DEMOA001"');
  await page.getByTestId('session-who').filter({ hasText: 'DEMOA001' }).waitFor({ timeout: STEP });

  await runTab(page, 'MeAndLedger');
  const me = await waitForResponse(page, '"nickname": "爱丽丝"', '"points": 1280', '"pointsLedger"');
  assert.match(me, /"balanceAfter": 1280/);
  await page.screenshot({ path: join(SCREENSHOTS, 'member-me.png') });

  // "Sign in as" runs the mock login and fills the Authorization header.
  await page.getByLabel('Mock WeChat code').fill('bob');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByTestId('session-who').filter({ hasText: '小博' }).waitFor({ timeout: STEP });
  await page.locator('.graphiql-editor-tool', { hasText: 'Bearer' }).first().waitFor({ timeout: STEP });
  await page.locator('.graphiql-execute-button').click();
  await waitForResponse(page, '"nickname": "小博"', '"points": 300');
  await page.screenshot({ path: join(SCREENSHOTS, 'member-sign-in-as.png') });
  await closePage('/graphql', opened);
});

test('the admin playground signs in with adminLogin and lists the members with their points', async () => {
  const opened = await openPage('/admin/graphql');
  const { page } = opened;
  assert.equal(await page.title(), 'Loyalty · admin API');
  assert.equal(await page.getByLabel('Mock WeChat code').count(), 0, 'no mock sign-in for admins');

  await runTab(page, 'AdminLogin');
  await waitForResponse(page, '"accessToken"', '"role": "SUPERADMIN"');
  await runTab(page, 'Members');
  await waitForResponse(page, '"memberNo": "DEMOA001"', '"points": 1280');
  await page.screenshot({ path: join(SCREENSHOTS, 'admin-members.png') });

  // The explorer plugin renders the schema (it came from introspection, same origin).
  await page.getByRole('button', { name: 'Show GraphiQL Explorer' }).click();
  await page.locator('.graphiql-explorer-root').getByText('members', { exact: true }).first().waitFor({ timeout: STEP });
  await page.screenshot({ path: join(SCREENSHOTS, 'admin-explorer.png') });
  await closePage('/admin/graphql', opened);
});

test('no request from either page left the server origin, and nothing failed in the page', () => {
  assert.deepEqual(offOrigin, [], 'requests to other origins');
  assert.deepEqual(problems, [], 'errors in the pages');
});
