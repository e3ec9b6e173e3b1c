// Browser tests of issue 11 ("the demo"): each part starts its own `meshlog demo` (fixed ports:
// 3001.., 3005, 5173, 8001..; nothing else may hold them) and drives the page in Chromium.
//
//   MESHLOG_BIN=target/debug/meshlog CHROMIUM_PATH=/usr/bin/chromium npm run e2e:demo
//
// Env as in demo.spec.mjs, plus MESHLOG_BIN, E2E_ONLY (a substring of the describe names to run)
// and SHOT_DOCS=1 (write the topology screenshots into docs/ for the README).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { PAGE_URL, ROOT, T, demoHasFlag, freePorts, meshlogBin, pageRows, paneMessages, perfStart, perfStop, shot, simCall, simGet, demoGet, startDemo, until } from './support.mjs';

const ONLY = process.env.E2E_ONLY || '';
const RUN = Date.now().toString(36);
let browser;

before(async () => {
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium', headless: !process.env.HEADFUL });
});
after(async () => {
  await browser?.close();
});

/**
 * A describe block with its own demo and page; skipped unless its name matches E2E_ONLY. With
 * `moved` (a device count), the demo runs on free ports away from the defaults (`freePorts`).
 */
function withDemo(name, args, viewport, body, { moved = 0 } = {}) {
  describe(name, { skip: ONLY && !name.includes(ONLY) ? `E2E_ONLY=${ONLY}` : false }, () => {
    const ctx = { page: null, demo: null, errors: [], ports: null, requests: [] };
    before(async () => {
      ctx.ports = moved > 0 ? await freePorts(moved) : null;
      ctx.demo = await startDemo(args, { ports: ctx.ports });
      ctx.page = await browser.newPage({ viewport });
      ctx.page.on('pageerror', (e) => ctx.errors.push(String(e)));
      ctx.page.on('request', (r) => ctx.requests.push(r.url()));
      await ctx.page.goto(ctx.demo.pageUrl);
      await ctx.page.getByTestId('topology').waitFor({ timeout: T });
    });
    after(async () => {
      if (ctx.page) await shot(ctx.page, `${name.replace(/\W+/g, '-')}-end`);
      await ctx.page?.close();
      await ctx.demo?.stop();
      assert.deepEqual(ctx.errors, [], 'no uncaught errors in the page');
    });
    body(ctx);
  });
}

const tid = (page, id) => page.getByTestId(id);

async function send(page, device, text) {
  await until(`${device}'s composer`, () => tid(page, `composer-input-${device}`).isEnabled());
  await tid(page, `composer-input-${device}`).fill(text);
  await tid(page, `send-${device}`).click();
}

const hasText = async (page, device, text) => (await paneMessages(page, device)).some((m) => m.text.includes(text));

async function docsShot(page, name, { from = null } = {}) {
  if (!process.env.SHOT_DOCS) return;
  if (from) await tid(page, from).evaluate((e) => e.scrollIntoView({ block: 'start' }));
  else await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(ROOT, 'docs', `${name}.png`), fullPage: false });
}

// Issue 24, item 7: the page asks the service the demo runs, wherever it was moved, and never
// the default port, where another demo (someone else's, on a shared machine) may answer.
withDemo('moved ports: the page finds its own devices', ['--devices', 'erin,frank'], { width: 1280, height: 800 }, (ctx) => {
  it('shows erin and frank from the moved ports, and asks nothing of the default ones', async () => {
    const { page, ports } = ctx;
    for (const [i, name] of ['erin', 'frank'].entries()) {
      await tid(page, `pane-${name}`).waitFor({ timeout: T });
      const url = `127.0.0.1:${ports.deviceBase + i}`;
      await until(`${name}'s pane to name ${url}`, async () => (await tid(page, `pane-${name}`).innerText()).includes(url));
    }
    await send(page, 'erin', `on moved ports ${RUN}`);
    await until('frank to get erin’s message', () => hasText(page, 'frank', `on moved ports ${RUN}`), T * 2);
    const defaults = ctx.requests.filter((u) => /:(3001|3002|3005|5173)\//.test(u));
    assert.deepEqual(defaults, [], 'no request to a default port');
  });
}, { moved: 2 });

withDemo('three devices in real mode: carol cut off and healed', ['--devices', 'alice,bob,carol'], { width: 1280, height: 800 }, (ctx) => {
  it('shows three panes, three links and every device up', async () => {
    const { page } = ctx;
    for (const d of ['alice', 'bob', 'carol']) {
      await tid(page, `pane-${d}`).waitFor({ timeout: T });
      assert.equal(await tid(page, `topo-node-${d}`).getAttribute('data-status'), 'up');
    }
    for (const l of ['alice-bob', 'alice-carol', 'bob-carol']) assert.equal(await tid(page, `topo-link-${l}`).getAttribute('data-state'), 'up');
    // The demo names no peers in a mesh: each link is drawn as found on the LAN once its ends
    // heard each other's announcements.
    for (const l of ['alice-bob', 'alice-carol', 'bob-carol']) {
      await until(`${l} found on the LAN`, async () => (await tid(page, `topo-link-${l}`).getAttribute('data-found')) === 'discovered');
      // Loopback has no NAT: every link is direct, none goes through a relay.
      assert.equal(await tid(page, `topo-link-${l}`).getAttribute('data-path'), 'direct');
    }
  });

  it('a partition into {alice, bob} and {carol} keeps carol out until healed', async () => {
    const { page } = ctx;
    await tid(page, 'group-carol').selectOption({ value: '1' });
    await tid(page, 'partition-apply').click();
    await until('carol shown in another group', async () => (await tid(page, 'topo-link-alice-carol').getAttribute('data-state')) === 'partitioned');
    assert.equal(await tid(page, 'topo-link-alice-bob').getAttribute('data-state'), 'up');
    const text = `cut-off ${RUN}`;
    await send(page, 'alice', text);
    await until('bob to get it', () => hasText(page, 'bob', text));
    // Evidence that carol was tried and refused: packets to or from carol dropped as `blocked`.
    await until('blocked packets towards carol', () =>
      page.$$eval('[data-testid="netlog-row"][data-direction="dropped"]', (rows) => rows.some((r) => (r.textContent ?? '').includes('carol'))),
    );
    assert.equal(await hasText(page, 'carol', text), false, 'carol must not have it while cut off');
    await docsShot(page, 'topology-desktop');
    await tid(page, 'partition-heal').click();
    await until('the links to be up again', async () => (await tid(page, 'topo-link-alice-carol').getAttribute('data-state')) === 'up');
    await until('carol to catch up', () => hasText(page, 'carol', text), T * 2);
  });

  it('a one-way cut is drawn apart from a both-ways cut, and heals', async () => {
    const { page } = ctx;
    await tid(page, 'cut-alice-carol').selectOption('cut-ab');
    await until('a one-way cut', async () => (await tid(page, 'topo-link-alice-carol').getAttribute('data-state')) === 'cut-ab');
    await tid(page, 'cut-bob-carol').selectOption('cut-both');
    await until('a both-ways cut', async () => (await tid(page, 'topo-link-bob-carol').getAttribute('data-state')) === 'cut-both');
    await tid(page, 'cut-alice-carol').selectOption('up');
    await tid(page, 'cut-bob-carol').selectOption('up');
    await until('healed', async () =>
      (await tid(page, 'topo-link-alice-carol').getAttribute('data-state')) === 'up' &&
      (await tid(page, 'topo-link-bob-carol').getAttribute('data-state')) === 'up',
    );
  });
});

withDemo('relay through a middle device in a line', ['--devices', 'alice,bob,carol', '--topology', 'line'], { width: 1280, height: 800 }, (ctx) => {
  it('alice reaches carol only through bob', async () => {
    const { page } = ctx;
    assert.equal(await tid(page, 'topo-link-alice-carol').count(), 0, 'no direct link in a line');
    await tid(page, 'topo-link-alice-bob').waitFor({ state: 'attached', timeout: T });
    const text = `relayed ${RUN}`;
    await send(page, 'alice', text);
    await until('carol to get it', () => hasText(page, 'carol', text), T * 2);
    await until('packets on the bob–carol link', async () => Number(await tid(page, 'topo-link-bob-carol').getAttribute('data-packets')) > 0);
    const direct = await page.$$eval('[data-testid="netlog-row"]', (rows) =>
      rows.filter((r) => /alice → carol|carol → alice/.test(r.textContent ?? '')).length,
    );
    assert.equal(direct, 0, 'alice and carol never exchange a packet directly');
  });
});

withDemo('members: alice removes carol, bob sees it, an invite shows its QR code, dave joins with it', ['--devices', 'alice,bob,carol'], { width: 1280, height: 900 }, (ctx) => {
  const status = (page, pane, member) => tid(page, `member-${pane}-${member}`).getAttribute('data-status');
  it('only the admin may remove; the removal reaches bob; the key epoch moves to 1', async () => {
    const { page } = ctx;
    for (const d of ['alice', 'bob']) await tid(page, `members-toggle-${d}`).click();
    await until("alice's roster", async () => (await status(page, 'alice', 'carol')) === 'active');
    await until("bob's roster", async () => (await status(page, 'bob', 'carol')) === 'active');
    assert.equal(await tid(page, 'member-alice-alice').getAttribute('data-role'), 'admin');
    assert.equal(await tid(page, 'remove-bob-carol').count(), 0, 'bob is no admin: no remove button');
    assert.equal(await tid(page, 'invite-bob').count(), 0, 'bob is no admin: no invite button');
    // Two clicks: remove, then confirm.
    await tid(page, 'remove-alice-carol').click();
    await until('the confirm step', async () => (await tid(page, 'remove-alice-carol').textContent()).includes('confirm'));
    await tid(page, 'remove-alice-carol').click();
    await until('carol removed at alice', async () => (await status(page, 'alice', 'carol')) === 'removed');
    await until('carol removed at bob', async () => (await status(page, 'bob', 'carol')) === 'removed', T * 2);
    await tid(page, 'pane-alice').getByRole('button', { name: 'stats ▾' }).click();
    await until('key epoch 1 at alice', async () => (await tid(page, 'key-epoch-alice').textContent()) === '1');
  });

  it('an invite shows its token and a QR code', async () => {
    const { page } = ctx;
    await tid(page, 'invite-alice').click();
    await tid(page, 'invite-qr-alice').waitFor({ timeout: T });
    const token = await tid(page, 'invite-token-alice').inputValue();
    assert.match(token, /^meshlog-invite-1\./);
    const size = await tid(page, 'invite-qr-alice').evaluate((img) => img.naturalWidth);
    assert.ok(size >= 100, `the QR code is drawn (${size} px)`);
    await shot(page, 'members-invite');
  });

  it('dave joins with the invite: his pane appears, with the history', async () => {
    const { page, demo } = ctx;
    const token = await tid(page, 'invite-token-alice').inputValue();
    const before = `before dave ${RUN}`;
    await send(page, 'alice', before);
    // A page that also lists dave, who runs nowhere yet: no pane for him until a roster names him.
    const list = ['alice=http://127.0.0.1:3001', 'bob=http://127.0.0.1:3002', 'carol=http://127.0.0.1:3003', `dave=http://127.0.0.1:${DAVE_HTTP}`];
    const joined = await browser.newPage({ viewport: { width: 1600, height: 900 } });
    const errors = [];
    joined.on('pageerror', (e) => errors.push(String(e)));
    let dave = null;
    try {
      await joined.goto(`${PAGE_URL}/?devices=${list.join(',')}`);
      await tid(joined, 'pane-alice').waitFor({ timeout: T });
      await until('no pane for dave before he joins', async () => (await tid(joined, 'pane-dave').count()) === 0);
      dave = startJoiner(demo, 'dave', token);
      await until('dave admitted in alice\'s pane', async () => (await tid(joined, 'pane-dave').count()) === 1, T * 4);
      await until("alice's post in dave's pane", () => hasText(joined, 'dave', before), T * 4);
      await shot(joined, 'members-dave-joined');
    } finally {
      dave?.stop();
      await joined.close();
    }
    assert.deepEqual(errors, [], 'no uncaught errors in the page that listed dave');
  });
});

/** dave's ports, clear of the demo's (3001.., 3005, 8001..). */
const DAVE_HTTP = 3010;
const DAVE_UDP = 8010;

/**
 * `meshlog device --join TOKEN` beside the demo, with the demo's token (so the page's cookie opens
 * it too) and the page's origins; `stop()` kills it.
 */
function startJoiner(demo, name, token) {
  const data = path.join(demo.data, name);
  fs.mkdirSync(data, { recursive: true, mode: 0o700 });
  fs.copyFileSync(path.join(demo.data, 'demo-data', 'api-token'), path.join(data, 'api-token'));
  fs.chmodSync(path.join(data, 'api-token'), 0o600);
  const log = fs.openSync(path.join(demo.data, `${name}.log`), 'w');
  const origin = new URL(PAGE_URL);
  const child = spawn(
    meshlogBin(),
    [
      'device',
      `--name=${name}`,
      '--join',
      token,
      '--data',
      data,
      '--keys',
      path.join(demo.data, `${name}-keys`),
      '--http',
      `127.0.0.1:${DAVE_HTTP}`,
      '--udp',
      `127.0.0.1:${DAVE_UDP}`,
      '--allow-origin',
      origin.origin,
      '--allow-origin',
      `http://localhost:${origin.port}`,
    ],
    { stdio: ['ignore', log, log] },
  );
  return { stop: () => child.kill('SIGKILL') };
}

withDemo('crash and restart from the page', ['--devices', 'alice,bob'], { width: 1280, height: 800 }, (ctx) => {
  it('bob is crashed, shown down, restarted, and has everything', async () => {
    const { page } = ctx;
    const before = `before crash ${RUN}`;
    const during = `while bob is down ${RUN}`;
    await send(page, 'bob', before);
    await until('alice to get bob’s message', () => hasText(page, 'alice', before));
    await tid(page, 'crash-bob').click();
    await until('bob shown down', async () => (await tid(page, 'device-up-bob').getAttribute('data-up')) === 'false');
    await tid(page, 'down-bob').waitFor({ timeout: T });
    assert.equal(await tid(page, 'topo-node-bob').getAttribute('data-status'), 'down');
    // Issue 24: alice's chip for bob no longer says "in sync" with his process gone.
    await until('alice’s chip for bob to say down', async () => (await tid(page, 'peer-alice-bob').getAttribute('data-state')) === 'down');
    await send(page, 'alice', during);
    await tid(page, 'restart-bob').click();
    await until('bob up again', async () => (await tid(page, 'device-up-bob').getAttribute('data-up')) === 'true', T * 2);
    await until('bob to have the message made before the crash (durable)', () => hasText(page, 'bob', before), T * 2);
    await until('bob to catch up on what alice sent meanwhile', () => hasText(page, 'bob', during), T * 2);
    assert.equal(await tid(page, 'down-bob').count(), 0);
  });
});

// clock-skew.toml: alice's clock is an hour fast, bob's an hour slow. Event times come from the
// hybrid clock, so bob's answer sorts after alice's message although his clock reads two hours
// earlier (with raw clocks it would be listed two hours before it).
withDemo('skewed clocks in simulated mode', ['--sim', path.join(ROOT, 'scenarios', 'clock-skew.toml')], { width: 1280, height: 800 }, (ctx) => {
  it('an answer from a clock two hours slow sorts after the message it answers, in every pane', async () => {
    const { page } = ctx;
    const question = `fast clock asks ${RUN}`;
    const answer = `slow clock answers ${RUN}`;
    await send(page, 'alice', question);
    await until('bob to get alice’s message', () => hasText(page, 'bob', question), T * 2);
    await send(page, 'bob', answer);
    for (const device of ['alice', 'bob', 'carol', 'dave']) {
      await until(`${device} to hold both`, async () => (await hasText(page, device, question)) && (await hasText(page, device, answer)), T * 2);
      const texts = (await paneMessages(page, device)).map((m) => m.text);
      const asked = texts.findIndex((t) => t.includes(question));
      const answered = texts.findIndex((t) => t.includes(answer));
      assert.ok(asked < answered, `${device} lists the answer (${answered}) after the question (${asked})`);
    }
    await docsShot(page, 'clock-skew', { from: 'pane-alice' });
  });
});

const simArgs = ['--sim', path.join(ROOT, 'scenarios', 'default-demo.toml')];
withDemo('simulated mode at 100x', demoHasFlag('--paused') ? [...simArgs, '--paused'] : simArgs, { width: 1280, height: 800 }, (ctx) => {
  it('starts paused with a visible hint that goes away on start', async () => {
    const { page } = ctx;
    await tid(page, 'paused-hint').waitFor({ timeout: T });
    assert.match(await tid(page, 'paused-hint').innerText(), /press ▶ start/);
    // The world lives in memory: the hint says so, and no longer offers --data-dir, which
    // keeps only the generator settings (issue 24).
    const memoryHint = await tid(page, 'not-persistent').innerText();
    assert.match(memoryHint, /lives in memory/);
    assert.doesNotMatch(memoryHint, /--data-dir/);
  });

  it('every author’s messages stay in order at 100×; the page’s work stays bounded; long tasks and frame times are printed', async () => {
    const { page } = ctx;
    assert.equal((await simCall(page, '/api/simulation/message-rate', { messages_per_hour: 3600 })).status, 200);
    await tid(page, 'speed-100').click();
    await until('speed 100×', async () => (await tid(page, 'speed-value').innerText()).startsWith('100'));
    const before = await pageRows(page);
    await perfStart(page);
    await tid(page, 'gen-start').click();
    await until('the hint to go', async () => (await tid(page, 'paused-hint').count()) === 0);
    // Run until a few hundred messages were made (about 100 a second of wall time at 100×). The
    // service is asked from here, not from the page, so the polling adds no task to the page.
    const generated = async () => (await simGet(ctx.demo, '/api/simulation')).devices.reduce((n, d) => n + d.generated, 0);
    await until('300 generated messages', async () => (await generated()) >= 300, T * 4);
    const { long_frames: longFrames, ...perf } = await perfStop(page);
    const rows = await pageRows(page);
    console.log(`# 100x simulated: ${JSON.stringify({ ...perf, ...rows })}`);
    for (const f of longFrames) console.log(`#   long frame ${JSON.stringify(f)}`);
    // What bounds the page's work at any speed (figures above are printed, not asserted):
    // rows in the DOM stay within each list's budget however many messages and packets there are
    // (state/window.ts WINDOW_ROWS, NetworkLog NETLOG_ROWS, GeneratorCard ACTIVITY_ROWS) ...
    assert.ok(rows.pane_rows_max <= 40, `at most 40 message rows in a pane, got ${rows.pane_rows_max} with ${await generated()} messages made`);
    assert.ok(rows.netlog_rows <= 30, `at most 30 network log rows, got ${rows.netlog_rows}`);
    assert.ok(rows.activity_rows <= 36, `at most 36 event rows, got ${rows.activity_rows}`);
    // ... and packets in flight are drawn on a canvas: no element and no CSS animation per packet.
    assert.equal(rows.topology_elements, before.topology_elements, 'the topology picture gains no element while packets fly');
    assert.equal(perf.topology_animations_max, 0, 'no CSS animation runs in the topology card');
    await tid(page, 'gen-pause').click();
    await until('paused', async () => (await tid(page, 'run-state').textContent()) === 'paused');
    // The panes followed the newest all along (one that stopped would be cheap to draw): each
    // shows its device's newest message, with no "jump to newest".
    for (const d of (await simGet(ctx.demo, '/api/simulation')).devices) {
      await until(`${d.name}'s pane to end with its newest message`, async () => {
        const newest = (await demoGet(ctx.demo, `${d.url}/api/messages?limit=1`)).messages.at(-1)?.id;
        return newest !== undefined && (await paneMessages(page, d.name)).at(-1)?.id === newest;
      });
      assert.equal(await tid(page, `jump-newest-${d.name}`).count(), 0, `${d.name}'s pane still follows the newest`);
    }
    for (const device of ['alice', 'bob']) {
      const rows = await paneMessages(page, device);
      const seen = {};
      let checked = 0;
      for (const m of rows) {
        const n = /\(#(\d+) from (\w+)\)/.exec(m.text);
        if (!n) continue;
        const [, num, author] = n;
        if (seen[author] !== undefined) {
          assert.ok(Number(num) > seen[author], `${device} shows ${author}'s #${num} after #${seen[author]}`);
          checked++;
        }
        seen[author] = Number(num);
      }
      assert.ok(checked > 20, `${device}: enough generated messages to check the order (${checked})`);
    }
  });
});

withDemo('phone size', [], { width: 390, height: 844 }, (ctx) => {
  it('nothing scrolls sideways; devices are tabs; controls wrap', async () => {
    const { page } = ctx;
    const widths = await page.evaluate(() => ({ doc: document.documentElement.scrollWidth, view: window.innerWidth }));
    assert.ok(widths.doc <= widths.view, `document ${widths.doc} px wide in a ${widths.view} px viewport`);
    assert.equal(await tid(page, 'pane-alice').isVisible(), true);
    assert.equal(await tid(page, 'pane-bob').isVisible(), false);
    await tid(page, 'tab-bob').click();
    await until('bob’s pane', () => tid(page, 'pane-bob').isVisible());
    for (const id of ['gen-start', 'speed-100', 'gen-step']) {
      const box = await tid(page, id).boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= widths.view, `${id} on screen`);
    }
    await docsShot(page, 'topology-phone');
    const after = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(after <= widths.view, `still no sideways scroll with bob's pane (${after} px)`);
  });

  it('the network log’s rows stay inside its card, above the generator, with each time clear of its name', async () => {
    const { page } = ctx;
    await until('a screen of log rows', async () => (await page.locator('[data-testid="netlog-row"]').count()) >= 15, T * 2);
    const m = await page.evaluate(() => {
      const rect = (el) => el.getBoundingClientRect();
      const card = rect(document.querySelector('[data-testid="netlog"]'));
      const list = rect(document.querySelector('.netlog-list'));
      const gen = rect(document.querySelector('[data-testid="generator"]'));
      const rows = [...document.querySelectorAll('[data-testid="netlog-row"]')].map((row) => {
        const time = row.querySelector('.nl-time');
        return { time: time.textContent, timeRight: rect(time).right, timeClipped: time.scrollWidth > time.clientWidth, nameLeft: rect(row.querySelector('.nl-dev')).left };
      });
      return { card, list, gen, rows };
    });
    assert.ok(m.list.bottom <= m.card.bottom + 0.5, `the log's list ends at ${m.list.bottom}, inside its card (${m.card.bottom})`);
    assert.ok(m.card.bottom <= m.gen.top + 0.5, `the log's card ends at ${m.card.bottom}, above the generator (${m.gen.top})`);
    for (const r of m.rows) {
      assert.ok(!r.timeClipped && r.timeRight <= r.nameLeft, `time ${r.time} (to ${r.timeRight}) runs into the name (from ${r.nameLeft})`);
    }
  });
});

withDemo('desktop size', [], { width: 1280, height: 800 }, (ctx) => {
  it('the network log shows at least 12 rows', async () => {
    const { page } = ctx;
    // Measured once a screen of rows is there: the card's first rows come while the panes
    // above it are still being laid out. A layout that never fits 12 rows times out with its
    // last figures.
    await until('a screen of log rows', async () => (await page.locator('[data-testid="netlog-row"]').count()) >= 12, T * 2);
    await until('the log to fit 12 rows inside the window', async () => {
      const rows = await page.evaluate(() => {
        const list = document.querySelector('.netlog-list');
        const row = document.querySelector('[data-testid="netlog-row"]');
        const r = list.getBoundingClientRect();
        return { fit: Math.floor(list.clientHeight / row.getBoundingClientRect().height), bottom: r.bottom, view: innerHeight };
      });
      if (rows.fit >= 12 && rows.bottom <= rows.view) return true;
      throw new Error(`the log fits ${rows.fit} rows and ends at ${rows.bottom} px in a ${rows.view} px window`);
    });
  });

  it('a healthy start’s stale-echo drops are counted as expected, with nothing in red', async () => {
    const { page } = ctx;
    // Each device drops its peer's first packet of a new run as `stale_echo` (docs/PROTOCOL.md).
    await until('a stale_echo drop in the log', async () => (await page.locator('[data-testid="netlog-row"]', { hasText: 'stale_echo' }).count()) > 0);
    const red = await page.evaluate(() => ({
      problemRows: [...document.querySelectorAll('[data-testid="netlog-row"].problem')].map((r) => r.textContent),
      problemText: [...document.querySelectorAll('[data-testid="netlog"] .problem-text')].map((e) => e.textContent),
    }));
    assert.deepEqual(red, { problemRows: [], problemText: [] }, 'nothing in red on a healthy start');
    assert.match(await tid(page, 'netlog-expected').innerText(), /expected drops?/);
  });

  it('a peer not heard from within the bound is shown silent, not in sync, and in sync again once heard', async () => {
    const { page } = ctx;
    const chip = page.locator('[data-testid="pane-alice"] .peer', { hasText: 'bob' });
    await until('alice’s chip for bob to say in sync', async () => (await chip.innerText()).includes('in sync'), T * 2);
    // bob offline sends nothing: to alice he is as good as gone, though his process runs.
    const toggle = tid(page, 'online-toggle-bob');
    await until('bob’s online toggle', () => toggle.isEnabled());
    await toggle.click();
    await until('bob offline', async () => (await toggle.getAttribute('data-online')) === 'false');
    // Two devices: silent after 4 rounds of 5 s (state/peers.ts), well inside this wait.
    await until('alice’s chip for bob to say not heard', async () => /not heard/.test(await chip.innerText()), 45_000);
    assert.doesNotMatch(await chip.innerText(), /in sync/);
    assert.equal(await tid(page, 'peer-alice-bob').getAttribute('data-state'), 'silent');
    await toggle.click();
    await until('bob online', async () => (await toggle.getAttribute('data-online')) === 'true');
    await until('alice’s chip for bob in sync again', async () => (await chip.innerText()).includes('in sync'), T * 2);
  });
});

// The README's picture (docs/demo.png with SHOT_DOCS=1): alice and bob at 100×, the generator
// running, the network log; and what a person sees there holds: both panes fill, nothing red.
withDemo('the README picture', [], { width: 1400, height: 900 }, (ctx) => {
  it('the generator at 100× fills both panes, with no drop shown as suspicious', async () => {
    const { page } = ctx;
    assert.equal((await simCall(page, '/api/simulation/message-rate', { messages_per_hour: 3600 })).status, 200);
    assert.equal((await simCall(page, '/api/simulation/attachment-rate', { percent: 0 })).status, 200);
    await tid(page, 'speed-100').click();
    await tid(page, 'gen-start').click();
    const generated = async (name) => (await paneMessages(page, name)).filter((m) => /\(#\d+ from (alice|bob)\)/.test(m.text)).length;
    await until('a screen of generated messages in each pane', async () => (await generated('alice')) >= 12 && (await generated('bob')) >= 12, T * 3);
    for (const [a, b] of [['alice', 'bob'], ['bob', 'alice']]) {
      assert.notEqual(await tid(page, `peer-${a}-${b}`).getAttribute('data-state'), 'silent', `${a} hears ${b}`);
    }
    assert.equal(await tid(page, 'netlog-suspicious').count(), 0, 'no suspicious drop');
    await docsShot(page, 'demo');
    await tid(page, 'gen-pause').click();
  });
});

// Issue 24, item 8: five panes at 1,600 px do not fit side by side; those cut off are marked, and
// the mark brings them into view. Simulated (no processes), on ports of its own.
withDemo('five panes at 1600 px', [...simArgs, '--paused', '--devices', 'alice,bob,carol,dave,erin'], { width: 1600, height: 900 }, (ctx) => {
  it('every pane is in view or marked at the edge, and the mark scrolls to it', async () => {
    const { page } = ctx;
    const names = ['alice', 'bob', 'carol', 'dave', 'erin'];
    for (const n of names) await tid(page, `pane-${n}`).waitFor({ timeout: T });
    const inView = (n) =>
      page.evaluate((name) => {
        const strip = document.querySelector('.panes').getBoundingClientRect();
        const pane = document.querySelector(`[data-testid="pane-${name}"]`).getBoundingClientRect();
        return pane.left >= strip.left - 2 && pane.right <= strip.right + 2;
      }, n);
    const cut = [];
    for (const n of names) if (!(await inView(n))) cut.push(n);
    console.log(`# cut off at 1600 px: ${JSON.stringify(cut)}`);
    if (cut.length === 0) return; // all fit: nothing to mark
    const marked = async () => {
      const l = tid(page, 'panes-more-left');
      const r = tid(page, 'panes-more-right');
      return `${(await l.count()) ? await l.innerText() : ''} ${(await r.count()) ? await r.innerText() : ''}`;
    };
    await until(`the cut-off panes (${cut.join(', ')}) named at an edge`, async () => {
      const text = await marked();
      return cut.every((n) => text.includes(n));
    });
    assert.ok(await tid(page, 'panes-more-right').isVisible(), 'a mark on the right');
    // Each click on the mark brings the next cut-off pane into view (a click that lands is the
    // mark's: Playwright clicks only what is on top).
    const last = cut.at(-1);
    for (const n of cut) {
      if (await inView(n)) continue;
      await tid(page, 'panes-more-right').click();
      await until(`${n} scrolled into view`, () => inView(n));
    }
    assert.ok(await inView(last), `${last} in view`);
    await until('no mark on the right once the last pane is in view', async () => (await tid(page, 'panes-more-right').count()) === 0);
    assert.ok(await tid(page, 'panes-more-left').isVisible(), 'the panes now cut off on the left are marked there');
  });
}, { moved: 5 });
