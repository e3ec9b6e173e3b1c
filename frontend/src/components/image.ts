// Fit a picked image under the API's body limit by re-encoding it smaller in a canvas.
import { fileToBase64 } from '../api';
import { ATTACHMENT_MAX_BYTES } from '../state/limits';
import type { NewAttachment } from '../state/types';

async function loadImage(file: Blob): Promise<HTMLImageElement> {
  const url = URL.createObjectURL(file);
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    return img;
  } finally {
    // decode() has finished with the URL once it resolves
    setTimeout(() => URL.revokeObjectURL(url), 0);
  }
}

function canvasBlob(c: HTMLCanvasElement, type: string, quality: number): Promise<Blob | null> {
  return new Promise((resolve) => c.toBlob(resolve, type, quality));
}

/** The attachment to send for `file`; large images are scaled down, other large files refused. */
export async function prepareAttachment(file: File): Promise<{ attachment: NewAttachment; size: number; note?: string }> {
  const mime = file.type || 'application/octet-stream';
  if (file.size <= ATTACHMENT_MAX_BYTES) {
    return { attachment: { name: file.name, mime, data_base64: await fileToBase64(file) }, size: file.size };
  }
  if (!mime.startsWith('image/')) {
    throw new Error(`${file.name} is ${Math.round(file.size / 1024)} KB; files up to ${Math.floor(ATTACHMENT_MAX_BYTES / 1024)} KB fit`);
  }
  const img = await loadImage(file);
  let side = Math.min(1280, Math.max(img.naturalWidth, img.naturalHeight));
  for (let i = 0; i < 8; i++) {
    const scale = side / Math.max(img.naturalWidth, img.naturalHeight);
    const c = document.createElement('canvas');
    c.width = Math.max(1, Math.round(img.naturalWidth * scale));
    c.height = Math.max(1, Math.round(img.naturalHeight * scale));
    c.getContext('2d')!.drawImage(img, 0, 0, c.width, c.height);
    const blob = await canvasBlob(c, 'image/jpeg', 0.82);
    if (blob && blob.size <= ATTACHMENT_MAX_BYTES) {
      const name = file.name.replace(/\.[^.]+$/, '') + '.jpg';
      return {
        attachment: { name, mime: 'image/jpeg', data_base64: await fileToBase64(blob) },
        size: blob.size,
        note: `scaled to ${c.width}×${c.height}`,
      };
    }
    side = Math.round(side * 0.7);
  }
  throw new Error(`${file.name} is too large to send`);
}
