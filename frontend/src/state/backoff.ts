// Reconnect delays for EventSource streams: exponential with a cap and optional jitter.

export const BACKOFF_BASE_MS = 500;
export const BACKOFF_MAX_MS = 10_000;

/** Delay before reconnect attempt `attempt` (0-based). `random` in [0,1) adds up to 20% jitter. */
export function backoffDelay(attempt: number, random = 0): number {
  const exp = BACKOFF_BASE_MS * Math.pow(2, Math.max(0, Math.min(attempt, 20)));
  const capped = Math.min(BACKOFF_MAX_MS, exp);
  return Math.round(capped * (1 + 0.2 * Math.min(Math.max(random, 0), 1)));
}
