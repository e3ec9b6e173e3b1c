// Stable colours per device and per packet kind.
import type { LogKind } from './types';

const NAMED: Record<string, string> = {
  alice: '#0f9d76',
  bob: '#4f46e5',
  carol: '#d97706',
  dave: '#db2777',
  erin: '#0284c7',
  frank: '#7c3aed',
};
const PALETTE = ['#0f9d76', '#4f46e5', '#d97706', '#db2777', '#0284c7', '#7c3aed', '#65a30d', '#dc2626'];

export function deviceColor(name: string): string {
  const named = NAMED[name.toLowerCase()];
  if (named) return named;
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

export const KIND_COLORS: Record<LogKind, string> = {
  EVENT: '#2563eb',
  SUMMARY: '#10b981',
  DIGEST: '#f59e0b',
  FILTER: '#8b5cf6',
  SKETCH: '#ec4899',
  RECOVERY: '#64748b',
  BLOB: '#0891b2',
  UNKNOWN: '#94a3b8',
};

export const PROBLEM_COLOR = '#ef4444';
/** Drops the protocol or the demo cause on purpose: shown, but not as an alarm. */
export const EXPECTED_DROP_COLOR = '#94a3b8';
