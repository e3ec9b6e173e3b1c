import { describe, expect, it } from 'vitest';
import { BACKOFF_MAX_MS, backoffDelay } from './backoff';
import { parseConfig, parseServedConfig } from './config';
import { formatAgo, formatBytes, formatClock, formatSpeed, formatVirtualTime, sliderToSpeed, speedToSlider } from './format';
import { ATTACHMENT_MAX_BYTES, BODY_LIMIT_BYTES, attachmentFits, base64Length } from './limits';

describe('parseConfig', () => {
  it('defaults the simulation service to the page host on :3005', () => {
    expect(parseConfig('', '192.168.1.5')).toEqual({ simUrl: 'http://192.168.1.5:3005', devices: null });
    expect(parseConfig('', '').simUrl).toBe('http://127.0.0.1:3005');
  });
  it('takes ?sim= with or without a scheme', () => {
    expect(parseConfig('?sim=http://10.0.0.2:4005/', 'x').simUrl).toBe('http://10.0.0.2:4005');
    expect(parseConfig('?sim=localhost:9', 'x').simUrl).toBe('http://localhost:9');
  });
  it('reads ?devices= as name=url pairs or bare urls', () => {
    expect(parseConfig('?devices=alice=http://a:1,bob=b:2/', 'x').devices).toEqual([
      { name: 'alice', url: 'http://a:1' },
      { name: 'bob', url: 'http://b:2' },
    ]);
    expect(parseConfig('?devices=http://a:1', 'x').devices).toEqual([{ name: 'device1', url: 'http://a:1' }]);
  });
  it('asks the port the page server names, on the page host; ?sim= still wins', () => {
    const served = parseServedConfig('{"service_port":42005}');
    expect(parseConfig('', '127.0.0.1', served).simUrl).toBe('http://127.0.0.1:42005');
    expect(parseConfig('', 'localhost', served).simUrl).toBe('http://localhost:42005');
    expect(parseConfig('?sim=http://10.0.0.2:4005', 'x', served).simUrl).toBe('http://10.0.0.2:4005');
  });
  it('reads the served configuration, and falls back to the defaults only without a usable one', () => {
    expect(parseServedConfig('{"service_port":42005}')).toEqual({ service_port: 42005 });
    // No meta tag (Vite's dev server).
    expect(parseServedConfig(null)).toBeNull();
    expect(parseServedConfig('')).toBeNull();
    const warn = console.warn;
    console.warn = () => undefined;
    try {
      expect(parseServedConfig('{nope')).toBeNull();
      expect(parseServedConfig('{"service_port":70000}')).toEqual({ service_port: null });
      expect(parseConfig('', 'h', parseServedConfig('{"service_port":"x"}')).simUrl).toBe('http://h:3005');
    } finally {
      console.warn = warn;
    }
  });
});

describe('backoffDelay', () => {
  it('doubles from 500 ms and caps at 10 s, with bounded jitter', () => {
    expect([0, 1, 2, 3].map((a) => backoffDelay(a))).toEqual([500, 1000, 2000, 4000]);
    expect(backoffDelay(50)).toBe(BACKOFF_MAX_MS);
    expect(backoffDelay(0, 0.999)).toBeLessThanOrEqual(600);
    expect(backoffDelay(0, 0.5)).toBe(550);
  });
});

describe('format', () => {
  it('formats bytes', () => {
    expect(formatBytes(812)).toBe('812 B');
    expect(formatBytes(1104)).toBe('1.1 KB');
    expect(formatBytes(3.5 * 1024 * 1024)).toBe('3.5 MB');
  });
  it('shows small virtual clocks as elapsed time', () => {
    expect(formatClock(3_723_000)).toBe('01:02:03');
    expect(formatClock(90_000_000)).toBe('1d 01:00:00');
    expect(formatVirtualTime(61_000)).toBe('T+ 00:01:01');
    expect(formatVirtualTime(new Date(2026, 0, 2, 3, 4, 5).getTime())).toBe('2026-01-02 03:04:05');
  });
  it('formats ages and speeds', () => {
    expect(formatAgo(null, 5)).toBe('never');
    expect(formatAgo(1000, 1500)).toBe('just now');
    expect(formatAgo(0, 12_000)).toBe('12 s ago');
    expect(formatAgo(0, 300_000)).toBe('5 min ago');
    expect(formatSpeed(0.1)).toBe('0.1×');
    expect(formatSpeed(100)).toBe('100×');
  });
  it('maps the speed slider log-scale both ways across 0.1..100', () => {
    expect(sliderToSpeed(0)).toBe(0.1);
    expect(sliderToSpeed(1000)).toBe(100);
    expect(sliderToSpeed(speedToSlider(1))).toBe(1);
    expect(sliderToSpeed(speedToSlider(10))).toBe(10);
    expect(speedToSlider(1000)).toBe(1000);
  });
});

describe('limits', () => {
  it('keeps a max-size attachment inside the 512 KiB body', () => {
    expect(base64Length(3)).toBe(4);
    expect(base64Length(4)).toBe(8);
    expect(attachmentFits(ATTACHMENT_MAX_BYTES)).toBe(true);
    expect(attachmentFits(ATTACHMENT_MAX_BYTES + 3)).toBe(false);
    expect(base64Length(ATTACHMENT_MAX_BYTES)).toBeLessThan(BODY_LIMIT_BYTES);
  });
});
