// End-to-end test of the meshlog demo page against the REAL backends.
//
// Expects the demo to be running already: the page at PAGE_URL (default http://127.0.0.1:5173),
// the device servers and the simulation service it discovers. It starts no servers.
//
//   PAGE_URL=http://127.0.0.1:5173 CHROMIUM_PATH=/usr/bin/chromium npm run e2e
//
// Env: PAGE_URL, CHROMIUM_PATH, DEVICE_A (alice), DEVICE_B (bob), E2E_TIMEOUT_MS (15000), HEADFUL=1.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { testCard } from './png.mjs';

const PAGE_URL = process.env.PAGE_URL || 'http://127.0.0.1:5173';
const A = process.env.DEVICE_A || 'alice';
const B = process.env.DEVICE_B || 'bob';
const T = Number(process.env.E2E_TIMEOUT_MS || 15_000);
const SHOTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'screenshots');
const RUN = Date.now().toString(36);

let browser;
let page;
let broken = null; // name of the first failed step: later steps depend on earlier ones
const pageErrors = [];
const shared = {};

const pane = (d) => page.locator(`[data-testid="pane-${d}"]`);
const bubble = (d, text) => pane(d).locator('[data-testid="message"]', { hasText: text });

async function shot(name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) }).catch(() => undefined);
}

/** Poll `f` until it returns a truthy value or `timeout` passes. */
async function until(what, f, timeout = T) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await f();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function send(device, text) {
  await page.getByTestId(`composer-input-${device}`).fill(text);
  await page.getByTestId(`send-${device}`).click();
}

async function setOnline(device, online) {
  const toggle = page.getByTestId(`online-toggle-${device}`);
  await until(`${device}'s online toggle`, async () => (await toggle.isEnabled()) && (await toggle.isVisible()));
  if ((await toggle.getAttribute('data-online')) !== String(online)) await toggle.click();
  await until(`${device} to be ${online ? 'online' : 'offline'}`, async () => (await toggle.getAttribute('data-online')) === String(online));
}

function step(name, fn) {
  it(name, { timeout: 6 * T }, async (t) => {
    if (broken) {
      t.skip(`needs "${broken}", which failed`);
      return;
    }
    try {
      await fn();
    } catch (e) {
      broken = name;
      await shot(`FAILED-${name.replace(/\W+/g, '-')}`);
      throw e;
    }
  });
}

describe('meshlog demo page', () => {
  before(async () => {
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      headless: !process.env.HEADFUL,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.setDefaultTimeout(T);
    page.on('pageerror', (e) => pageErrors.push(String(e)));
  });

  after(async () => {
    await browser?.close();
  });

  step('01 page loads and finds both devices', async () => {
    await page.goto(PAGE_URL, { waitUntil: 'domcontentloaded', timeout: T });
    await pane(A).waitFor({ timeout: T });
    await pane(B).waitFor({ timeout: T });
    // both device streams connected and their first message list loaded
    await until('the composers to be usable', async () =>
      !(await page.getByTestId(`conn-${A}`).count()) && !(await page.getByTestId(`conn-${B}`).count()),
    );
    await page.getByTestId('gen-pause').click(); // a quiet start, whatever the last run left
    await setOnline(A, true);
    await setOnline(B, true);
    await page.getByTestId('virtual-time').waitFor({ timeout: T });
    assert.match(await page.getByTestId('virtual-time').innerText(), /\d\d:\d\d:\d\d/);
    await shot('01-loaded');
  });

  step('02 a message from Alice appears in Bob’s pane', async () => {
    shared.first = `hello bob ${RUN}`;
    await send(A, shared.first);
    const mine = bubble(A, shared.first);
    await mine.waitFor({ timeout: T });
    assert.equal(await mine.getAttribute('data-author'), A);
    assert.equal(await mine.getAttribute('data-auto'), 'false');
    const theirs = bubble(B, shared.first);
    await theirs.waitFor({ timeout: T });
    assert.equal(await theirs.getAttribute('data-author'), A);
    // the network log shows the packets
    await page.locator('[data-testid="netlog"] [data-testid="netlog-row"]').first().waitFor({ timeout: T });
    await shot('02-alice-to-bob');
  });

  step('03 Bob offline: Alice’s message does not reach him', async () => {
    await setOnline(B, false);
    shared.offline = `while you were away ${RUN}`;
    await send(A, shared.offline);
    await bubble(A, shared.offline).waitFor({ timeout: T });
    // A bounded wait for something that must NOT happen: eager push would take milliseconds.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await bubble(B, shared.offline).count(), 0, 'an offline device received a message');
    await shot('03-bob-offline');
  });

  step('04 Bob back online: the message arrives', async () => {
    await setOnline(B, true);
    await bubble(B, shared.offline).waitFor({ timeout: T });
    await shot('04-bob-online');
  });

  step('05 a reaction from Bob shows on Alice, and removing it clears it', async () => {
    const mine = bubble(B, shared.first);
    await mine.getByTestId('reaction-button').click();
    await mine.locator('[data-testid="emoji-👍"]').click();
    await mine.locator('[data-testid="reaction-chip"][data-emoji="👍"]').waitFor({ timeout: T });
    const onAlice = bubble(A, shared.first).locator('[data-testid="reaction-chip"][data-emoji="👍"]');
    await onAlice.waitFor({ timeout: T });
    await shot('05-reaction');
    // clicking your own reaction removes it, everywhere
    await mine.locator('[data-testid="reaction-chip"][data-emoji="👍"]').click();
    await onAlice.waitFor({ state: 'detached', timeout: T });
  });

  step('06 an image attached by Alice shows on Bob', async () => {
    const caption = `a picture ${RUN}`;
    await page.getByTestId(`attach-${A}`).setInputFiles({ name: `card-${RUN}.png`, mimeType: 'image/png', buffer: testCard(Date.now() % 97) });
    await send(A, caption);
    await bubble(A, caption).waitFor({ timeout: T });
    const img = bubble(B, caption).getByTestId('attachment-img');
    await img.waitFor({ timeout: T });
    const size = await until('the image to load on Bob', () =>
      img.evaluate((el) => (el.complete && el.naturalWidth > 0 ? `${el.naturalWidth}x${el.naturalHeight}` : '')),
    );
    assert.equal(size, '64x64');
    assert.match(await img.getAttribute('src'), /\/api\/messages\/[0-9a-f]{64}\/attachment$/);
    // The API token reached the page only as an HttpOnly cookie: script cannot read it, and a
    // request without credentials is refused.
    const probe = await page.evaluate(async (src) => {
      const bare = await fetch(src, { credentials: 'omit' });
      return { cookie: document.cookie, status: bare.status, body: await bare.json() };
    }, await img.getAttribute('src'));
    assert.ok(!probe.cookie.includes('meshlog_token'), `cookie readable by script: ${probe.cookie}`);
    assert.equal(probe.status, 401);
    assert.equal(typeof probe.body.error, 'string');
    await shot('06-image');
  });

  step('07 the generator makes auto messages on both devices, then pauses', async () => {
    const autoIds = (d) =>
      pane(d)
        .locator('[data-testid="message"][data-auto="true"]')
        .evaluateAll((els) => els.map((e) => e.getAttribute('data-id')));
    const before = { [A]: new Set(await autoIds(A)), [B]: new Set(await autoIds(B)) };
    const rate = page.getByTestId('gen-rate');
    const attach = page.getByTestId('gen-attach');
    const old = { rate: await rate.inputValue(), attach: await attach.inputValue() };
    const t0 = await page.getByTestId('virtual-time').innerText();

    await rate.fill('3600');
    await attach.fill('0');
    await page.getByTestId('speed-100').click();
    await until('speed 100×', async () => (await page.getByTestId('speed-value').innerText()).startsWith('100'));
    await page.getByTestId('gen-start').click();
    await until('the clock to run', async () => (await page.getByTestId('run-state').textContent()) === 'running');

    for (const d of [A, B]) {
      await until(`a new auto message in ${d}'s pane`, async () => (await autoIds(d)).some((id) => !before[d].has(id)));
    }
    await until('virtual time to move', async () => (await page.getByTestId('virtual-time').innerText()) !== t0);
    await shot('07-generator-running');

    await page.getByTestId('gen-pause').click();
    await until('the clock to pause', async () => (await page.getByTestId('run-state').textContent()) === 'paused');
    // leave the demo as we found it
    await rate.fill(old.rate || '60');
    await attach.fill(old.attach || '0');
    await page.getByTestId('speed-1').click();
    await until('speed 1×', async () => (await page.getByTestId('speed-value').innerText()).startsWith('1×'));
    await shot('07-generator-paused');
  });

  step('08 no uncaught errors in the page', async () => {
    assert.deepEqual(pageErrors, []);
  });
});
