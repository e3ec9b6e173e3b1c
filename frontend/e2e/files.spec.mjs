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

/** A demo of alice and bob (with `flags`) and a page on it, for the describe block it is
 * called in; `shotName` is the screenshot taken at the end. */
function demoPage(flags, shotName) {
  const ctx = { errors: [] };
  before(async () => {
    ctx.ports = await freePorts(2);
    ctx.demo = await startDemo(['--devices', 'alice,bob', ...flags], { ports: ctx.ports });
    ctx.browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium', headless: !process.env.HEADFUL });
    ctx.page = await ctx.browser.newPage({ viewport: { width: 1280, height: 800 } });
    ctx.page.on('pageerror', (e) => ctx.errors.push(String(e)));
    await ctx.page.goto(ctx.demo.pageUrl);
  });
  after(async () => {
    if (ctx.page) await shot(ctx.page, shotName);
    await ctx.browser?.close();
    await ctx.demo?.stop();
    assert.deepEqual(ctx.errors, [], 'no uncaught errors in the page');
  });
  return ctx;
}

describe('a large file: uploaded, referred to by id, shown', () => {
  const ctx = demoPage([], 'files-end');

  it('uploads from the composer and shows the image', { timeout: 8 * T }, async () => {
    const { page, ports, demo } = ctx;
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

// Issue 26, item 4: on a slow link, the receiver's page shows the file arriving, and draws the
// image from its verified prefix before the whole is there. The devices serve each peer at
// 64 KiB/s (`--blob-serve-rate`), so the ~700 KB picture takes about ten seconds to reach bob.
describe('a large image on a slow link: drawn from its prefix as it arrives, then whole', () => {
  const RATE_BYTES_PER_S = 64 * 1024;
  const ctx = demoPage(['--blob-serve-rate', String(RATE_BYTES_PER_S)], 'files-slow-end');

  it("bob's pane shows progress and a partial image, then the whole image", { timeout: 8 * T }, async () => {
    const { page } = ctx;
    const png = bigPng(27);
    const input = page.getByTestId('composer-input-alice');
    await until("alice's composer", () => input.isEnabled());
    await page.getByTestId('attach-alice').setInputFiles({ name: 'slow.png', mimeType: 'image/png', buffer: png });
    const text = `slow picture ${Date.now().toString(36)}`;
    await input.fill(text);
    await page.getByTestId('send-alice').click();

    const bubble = page.locator('[data-testid="pane-bob"] [data-testid="message"]', { hasText: text });
    // While it arrives: the progress bar, part of the groups, and the image's verified prefix
    // drawn at its full width (a PNG's first rows).
    const partial = await until(
      "a partial image in bob's pane while the file arrives",
      async () => {
        const progress = bubble.getByTestId('attachment-progress');
        if ((await progress.count()) === 0) return null;
        const img = progress.getByTestId('attachment-partial-img');
        if ((await img.count()) === 0) return null;
        const width = await img.evaluate((el) => (el.complete ? el.naturalWidth : 0));
        if (width !== SIDE) return null;
        const have = Number(await progress.getAttribute('data-have'));
        const total = Number(await progress.getAttribute('data-total'));
        return { have, total };
      },
      6 * T,
    );
    assert.ok(partial.total === Math.ceil(png.length / 16384), `${partial.total} groups`);
    assert.ok(partial.have > 0 && partial.have < partial.total, `drawn at ${partial.have} of ${partial.total} groups`);
    await shot(page, 'files-slow-partial');

    // Then the whole file, drawn from the device, and the progress gone.
    const img = bubble.getByTestId('attachment-img');
    await until(
      "the whole image in bob's pane",
      async () => (await img.count()) > 0 && (await img.evaluate((el) => el.complete && el.naturalWidth)) === SIDE,
      6 * T,
    );
    assert.equal(await bubble.getByTestId('attachment-progress').count(), 0);
  });
});
