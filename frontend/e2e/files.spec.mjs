// Browser test of issue 26 on one real device: a file over the inline limit is uploaded from
// the composer to the device's blob store (POST /api/files, with a progress bar), the message
// refers to it by id, and the attachment is drawn from the device.
//
//   MESHLOG_BIN=target/debug/meshlog CHROMIUM_PATH=/usr/bin/chromium npm run e2e:files
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { encodePng } from './png.mjs';
import { T, demoGet, freePorts, shot, startDemo, until } from './support.mjs';

/** Above the page's inline limit (~378 KiB: base64 inside a 512 KiB JSON body). */
const SIDE = 420;

/** Noise does not compress: a SIDE×SIDE RGBA PNG of it is ~700 KB. */
function bigPng(seed) {
  let s = seed >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s >>> 24;
  };
  return encodePng(SIDE, SIDE, () => [next(), next(), next(), 255]);
}

describe('a large file: uploaded, referred to by id, shown', () => {
  let browser;
  let page;
  let demo;
  let ports;
  const errors = [];

  before(async () => {
    ports = await freePorts(2);
    demo = await startDemo(['--devices', 'alice,bob'], { ports });
    browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium', headless: !process.env.HEADFUL });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(demo.pageUrl);
  });
  after(async () => {
    if (page) await shot(page, 'files-end');
    await browser?.close();
    await demo?.stop();
    assert.deepEqual(errors, [], 'no uncaught errors in the page');
  });

  it('uploads from the composer and shows the image', { timeout: 8 * T }, async () => {
    const png = bigPng(26);
    assert.ok(png.length > 400 * 1024, `the test image is ${png.length} bytes`);
    const input = page.getByTestId('composer-input-alice');
    await until("alice's composer", () => input.isEnabled());
    const uploads = [];
    page.on('request', (r) => {
      if (r.method() === 'POST' && r.url().endsWith('/api/files')) uploads.push(r.url());
    });
    await page.getByTestId('attach-alice').setInputFiles({ name: 'noise.png', mimeType: 'image/png', buffer: png });
    const text = `big picture ${Date.now().toString(36)}`;
    await input.fill(text);
    await page.getByTestId('send-alice').click();

    const bubble = page.locator('[data-testid="pane-alice"] [data-testid="message"]', { hasText: text });
    const img = bubble.getByTestId('attachment-img');
    await until('the uploaded image drawn in alice\'s pane', async () =>
      (await img.count()) > 0 && (await img.evaluate((el) => el.complete && el.naturalWidth)) === SIDE,
    );
    assert.equal(uploads.length, 1, 'the file went to POST /api/files, not inline');

    // The device's own view: a blob attachment, complete, of the file's size, served byte-exact.
    const base = `http://127.0.0.1:${ports.deviceBase}`;
    const messages = (await demoGet(demo, `${base}/api/messages?limit=5`)).messages;
    const message = messages.find((m) => m.text === text);
    assert.ok(message, 'alice has the message');
    const a = message.attachment;
    assert.equal(a.blob, true);
    assert.equal(a.complete, true);
    assert.equal(a.size, png.length);
    assert.equal(a.mime, 'image/png');
    assert.equal(a.chunks_have, a.chunks_total);
    assert.equal(a.chunks_total, Math.ceil(png.length / 16384));
    const served = await page.evaluate(async (url) => {
      const r = await fetch(url, { credentials: 'include' });
      return { status: r.status, type: r.headers.get('content-type'), len: (await r.arrayBuffer()).byteLength };
    }, `${base}${a.url}`);
    assert.deepEqual(served, { status: 200, type: 'image/png', len: png.length });
  });
});
