// The page's main thread at 100× in simulated mode, printed (a benchmark: nothing is asserted).
//
//   MESHLOG_BIN=target/debug/meshlog CHROMIUM_PATH=/usr/bin/chromium npm run bench:page
//
// Each run starts its own `meshlog demo --sim scenarios/default-demo.toml --paused` (ports as in
// topology.spec.mjs), sets 3,600 messages an hour at 100× (about 100 messages a second of wall
// time over two devices), and measures from start until BENCH_MESSAGES (default 1,000) were made:
// long tasks (count, longest, p95), the p95 frame interval, and for each long animation frame the
// scripts it ran. BENCH_RUNS (default 3) runs, one line of figures each.
import path from 'node:path';
import { chromium } from 'playwright-core';
import { PAGE_URL, ROOT, T, pageRows, perfStart, perfStop, simCall, simGet, startDemo, until } from './support.mjs';

const MESSAGES = Number(process.env.BENCH_MESSAGES || 1000);
const RUNS = Number(process.env.BENCH_RUNS || 3);

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium' });
try {
  for (let run = 1; run <= RUNS; run++) {
    const demo = await startDemo(['--sim', path.join(ROOT, 'scenarios', 'default-demo.toml'), '--paused']);
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      await page.goto(PAGE_URL);
      await page.getByTestId('topology').waitFor({ timeout: T });
      await simCall(page, '/api/simulation/message-rate', { messages_per_hour: 3600 });
      await page.getByTestId('speed-100').click();
      await until('speed 100×', async () => (await page.getByTestId('speed-value').innerText()).startsWith('100'));
      await perfStart(page);
      const started = Date.now();
      await page.getByTestId('gen-start').click();
      const made = async () => (await simGet(demo, '/api/simulation')).devices.reduce((n, d) => n + d.generated, 0);
      await until(`${MESSAGES} generated messages`, async () => (await made()) >= MESSAGES, T * 20);
      const { long_frames: longFrames, ...perf } = await perfStop(page);
      const seconds = (Date.now() - started) / 1000;
      const rows = await pageRows(page);
      console.log(`page at 100x, run ${run}: ${JSON.stringify({ messages: await made(), seconds: Number(seconds.toFixed(1)), ...perf, ...rows })}`);
      for (const f of longFrames) console.log(`  long frame ${JSON.stringify(f)}`);
      await page.close();
    } finally {
      await demo.stop();
    }
  }
} finally {
  await browser.close();
}
