// Shared helpers of the browser tests: starting a demo of their own, waiting on conditions with a
// deadline, and reading the page.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '..', '..');
export const PAGE_URL = process.env.PAGE_URL || 'http://127.0.0.1:5173';
export const SIM_URL = process.env.SIM_URL || 'http://127.0.0.1:3005';
export const T = Number(process.env.E2E_TIMEOUT_MS || 15_000);
export const SHOTS = path.join(HERE, 'screenshots');

/** An error `until` does not wait out: polling again cannot help. */
export class Fatal extends Error {}

/** Poll `f` until it returns a truthy value or `timeout` passes. */
export async function until(what, f, timeout = T) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await f();
      if (last) return last;
    } catch (e) {
      if (e instanceof Fatal) throw e;
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function answers(url) {
  try {
    const r = await fetch(url);
    return r.status < 500;
  } catch {
    return false;
  }
}

/**
 * `meshlog demo ARGS` in a fresh data directory, in its own process group, waited on until the
 * page and the simulation service answer. MESHLOG_BIN names the binary (scripts/test-all passes
 * the one it built). `stop()` ends the whole group.
 */
export const meshlogBin = () => process.env.MESHLOG_BIN || path.join(ROOT, 'target', 'debug', 'meshlog');

/** `meshlog demo` has this flag (`--paused` came with issue 11; before it simulated mode always started paused). */
export function demoHasFlag(flag) {
  return execFileSync(meshlogBin(), ['demo', '--help'], { encoding: 'utf8' }).includes(flag);
}

export async function startDemo(args, { ready = T * 8 } = {}) {
  const bin = meshlogBin();
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'meshlog-e2e-'));
  const log = fs.openSync(path.join(data, 'demo.log'), 'w');
  const child = spawn(bin, ['demo', '--data-dir', path.join(data, 'demo-data'), '--frontend', path.join(ROOT, 'frontend'), ...args], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', log, log],
  });
  let exited = null;
  child.on('exit', (code, signal) => {
    exited = `exited (${code ?? signal})`;
  });
  const signal = (sig) => {
    try {
      process.kill(-child.pid, sig);
    } catch {
      /* the group is gone */
    }
  };
  const stop = async () => {
    signal('SIGTERM');
    await until('the demo to stop', () => exited !== null, T).catch(() => undefined);
    // Whatever of its group is left (a demo that leaves children behind) goes too.
    signal('SIGKILL');
    // The fixed ports must be free before the next demo starts.
    await until('the ports to close', async () => !(await answers(`${SIM_URL}/api/health`)) && !(await answers(PAGE_URL)), T);
  };
  try {
    await until(
      'the demo to answer',
      async () => {
        if (exited !== null) throw new Fatal(`demo ${exited}: ${fs.readFileSync(path.join(data, 'demo.log'), 'utf8').slice(-2000)}`);
        return (await answers(`${SIM_URL}/api/health`)) && (await answers(PAGE_URL));
      },
      ready,
    );
  } catch (e) {
    await stop();
    throw e;
  }
  return { data, stop, log: () => fs.readFileSync(path.join(data, 'demo.log'), 'utf8') };
}

/** The page's view of one device's messages: [{id, author, text}] in display order. */
export function paneMessages(page, device) {
  return page.$$eval(`[data-testid="pane-${device}"] [data-testid="message"]`, (rows) =>
    rows.map((r) => ({ id: r.getAttribute('data-id'), author: r.getAttribute('data-author'), text: r.querySelector('.bubble-text')?.textContent ?? '' })),
  );
}

/** Call the simulation service from inside the page, so its API cookie goes along. */
export function simCall(page, pathname, body) {
  return page.evaluate(
    async ([url, b]) => {
      const r = await fetch(url, {
        method: b === undefined ? 'GET' : 'POST',
        credentials: 'include',
        headers: b === undefined ? undefined : { 'Content-Type': 'application/json' },
        body: b === undefined ? undefined : JSON.stringify(b),
      });
      return { status: r.status, body: await r.json().catch(() => null) };
    },
    [`${SIM_URL}${pathname}`, body],
  );
}

export async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) }).catch(() => undefined);
}
