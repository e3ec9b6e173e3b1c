// Shared helpers of the browser tests: starting a demo of their own, waiting on conditions with a
// deadline, and reading the page.
import { execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
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

/** Whether nothing listens on 127.0.0.1:`port` (TCP, or UDP with `udp`) right now. */
function portFree(port, udp = false) {
  return new Promise((resolve) => {
    if (udp) {
      const s = dgram.createSocket('udp4');
      s.once('error', () => resolve(false));
      s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
      return;
    }
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * Ports away from the defaults for a demo of `devices` devices, free when asked (a race with
 * another program is possible but unlikely in the range): the page, the simulation service,
 * the devices' HTTP ports from `deviceBase` (the service's port is skipped) and their UDP ports
 * from `udpBase`. Its `args` are the `meshlog demo` flags that put a demo there.
 */
export async function freePorts(devices) {
  // 50 tries of a random block in 20,000–59,999 (below Linux's ephemeral range, 32,768 up, is
  // not guaranteed; a block found taken is simply skipped).
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + 20 * Math.floor(Math.random() * 2_000);
    const ports = { web: base, service: base + 1, deviceBase: base + 2, udpBase: base + 12 };
    const tcp = [ports.web, ports.service, ...Array.from({ length: devices }, (_, i) => ports.deviceBase + i)];
    const udp = Array.from({ length: devices }, (_, i) => ports.udpBase + i);
    const free = await Promise.all([...tcp.map((p) => portFree(p)), ...udp.map((p) => portFree(p, true))]);
    if (free.every(Boolean)) {
      const args = ['--web', `127.0.0.1:${ports.web}`, '--service-port', String(ports.service), '--device-port-base', String(ports.deviceBase), '--udp-port-base', String(ports.udpBase)];
      return { ...ports, args, pageUrl: `http://127.0.0.1:${ports.web}`, simUrl: `http://127.0.0.1:${ports.service}` };
    }
  }
  throw new Error('no free block of ports found');
}

/**
 * As above; `ports` (from `freePorts`) puts it away from the default ports, and the demo is then
 * waited on there.
 */
export async function startDemo(args, { ready = T * 8, ports = null } = {}) {
  const pageUrl = ports?.pageUrl ?? PAGE_URL;
  const simUrl = ports?.simUrl ?? SIM_URL;
  args = [...(ports?.args ?? []), ...args];
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
    await until('the ports to close', async () => !(await answers(`${simUrl}/api/health`)) && !(await answers(pageUrl)), T);
  };
  try {
    await until(
      'the demo to answer',
      async () => {
        if (exited !== null) throw new Fatal(`demo ${exited}: ${fs.readFileSync(path.join(data, 'demo.log'), 'utf8').slice(-2000)}`);
        return (await answers(`${simUrl}/api/health`)) && (await answers(pageUrl));
      },
      ready,
    );
  } catch (e) {
    await stop();
    throw e;
  }
  return { data, stop, pageUrl, simUrl, log: () => fs.readFileSync(path.join(data, 'demo.log'), 'utf8') };
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

/** GET a URL of the demo's servers from Node with the demo's token (no script runs in the page). */
export async function demoGet(demo, url) {
  const token = fs.readFileSync(path.join(demo.data, 'demo-data', 'api-token'), 'utf8').trim();
  const r = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

export const simGet = (demo, pathname) => demoGet(demo, `${demo.simUrl}${pathname}`);

/**
 * Starts measuring the page's main thread: long tasks, long animation frames (with the scripts
 * they ran, to say what a long one was), frame intervals, and the most CSS animations running
 * at once in the topology picture (packets are drawn on a canvas: none should). `perfStop` ends it
 * and returns the figures.
 */
export function perfStart(page) {
  return page.evaluate(() => {
    const w = window;
    w.__perf = { long: [], loaf: [], frames: [], animations: 0, rowCommits: 0, multiPane: 0, stop: false };
    const p = w.__perf;
    // Commits that added message rows, and those that added them to more than one pane at once
    // (live frames are applied one device's lane at a time; printed, as timing decides it).
    new MutationObserver((records) => {
      const panes = new Set();
      for (const r of records)
        for (const n of r.addedNodes) if (n.nodeType === 1 && n.matches('[data-testid="message"]')) panes.add(n.closest('[data-testid^="pane-"]'));
      if (panes.size > 0) p.rowCommits++;
      if (panes.size > 1) p.multiPane++;
    }).observe(document.body, { childList: true, subtree: true });
    new PerformanceObserver((l) => l.getEntries().forEach((e) => p.long.push(e.duration))).observe({ type: 'longtask' });
    try {
      new PerformanceObserver((l) =>
        l.getEntries().forEach((e) => {
          if (e.duration < 50) return;
          const scripts = e.scripts.map((s) => `${s.invoker || s.invokerType} ${Math.round(s.duration)} ms${s.forcedStyleAndLayoutDuration >= 1 ? ` (forced layout ${Math.round(s.forcedStyleAndLayoutDuration)})` : ''}`);
          const render = e.renderStart ? Math.round(e.startTime + e.duration - e.renderStart) : 0;
          p.loaf.push({ ms: Math.round(e.duration), blocking_ms: Math.round(e.blockingDuration), render_ms: render, scripts });
        }),
      ).observe({ type: 'long-animation-frame' });
    } catch {
      /* no LoAF in this browser */
    }
    let last = performance.now();
    let n = 0;
    const frame = (t) => {
      p.frames.push(t - last);
      last = t;
      if (n++ % 10 === 0) {
        const topo = document.querySelector('[data-testid="topology-card"]');
        const inTopo = document.getAnimations().filter((a) => topo && a.effect?.target && topo.contains(a.effect.target)).length;
        p.animations = Math.max(p.animations, inTopo);
      }
      if (!p.stop) requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  });
}

export function perfStop(page) {
  return page.evaluate(() => {
    const p = window.__perf;
    p.stop = true;
    const q = (xs, f) => (xs.length === 0 ? 0 : [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(f * xs.length))]);
    return {
      long_tasks: p.long.length,
      long_task_max_ms: Math.round(Math.max(0, ...p.long)),
      long_task_p95_ms: Math.round(q(p.long, 0.95)),
      frames: p.frames.length,
      frame_p95_ms: Math.round(q(p.frames, 0.95)),
      topology_animations_max: p.animations,
      row_commits: p.rowCommits,
      multi_pane_commits: p.multiPane,
      long_frames: p.loaf,
    };
  });
}

/** Elements the page holds in each bounded list, and in the topology picture. */
export function pageRows(page) {
  return page.evaluate(() => {
    const count = (sel) => document.querySelectorAll(sel).length;
    const panes = [...document.querySelectorAll('[data-testid^="pane-"]')].map((p) => p.querySelectorAll('[data-testid="message"]').length);
    return {
      pane_rows_max: Math.max(0, ...panes),
      dom_rows: count('[data-testid="message"]'),
      netlog_rows: count('[data-testid="netlog-row"]'),
      activity_rows: count('.activity .act'),
      topology_elements: document.querySelector('[data-testid="topology"]')?.querySelectorAll('*').length ?? 0,
    };
  });
}
