// Request bodies are limited to 512 KiB and an attachment travels base64 inside JSON.

export const BODY_LIMIT_BYTES = 512 * 1024;
/** Room kept for the JSON around the base64 data (text, name, mime, quoting). */
export const BODY_OVERHEAD_BYTES = 8 * 1024;

export function base64Length(bytes: number): number {
  return 4 * Math.ceil(bytes / 3);
}

/** Largest file that still fits a POST /api/messages body. */
export const ATTACHMENT_MAX_BYTES = Math.floor(((BODY_LIMIT_BYTES - BODY_OVERHEAD_BYTES) / 4) * 3);

export function attachmentFits(bytes: number, textLength = 0): boolean {
  return base64Length(bytes) + textLength * 6 + BODY_OVERHEAD_BYTES <= BODY_LIMIT_BYTES;
}
