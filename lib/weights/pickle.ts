/**
 * PyTorch pickle checkpoints (`pytorch_model.bin`, `.pth`, `.pt`, `.ckpt`) are refused, never
 * opened: unpickling can execute arbitrary code. The refusal says how to convert one once.
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** File names that mean a PyTorch pickle. */
export const PICKLE_FILE = /(^pytorch_model.*\.bin$)|(\.(pth|pt|ckpt)$)/;

/** Pickle protocol 2–5 starts with 0x80 <proto>; torch.save's zip format starts with "PK\x03\x04". */
function looksLikePickle(head: Buffer): boolean {
  return (head[0] === 0x80 && head[1] >= 2 && head[1] <= 5) ||
    (head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04);
}

/** True when the open file `fd` starts like a pickle (whatever its name). */
export function looksLikePickleFd(fd: number): boolean {
  const head = Buffer.alloc(4);
  const got = fs.readSync(fd, head, 0, 4, 0);
  return got >= 2 && looksLikePickle(head);
}

/** The one message for any PyTorch pickle checkpoint, with the one-time conversion. */
export function pickleRefusal(file: string): string {
  return `${file}: PyTorch pickle checkpoints (.bin, .pth, .pt, .ckpt) are not loaded, because unpickling can execute arbitrary code; ` +
    `convert it once to model.safetensors in Python (pip install safetensors torch): ` +
    `python -c "import torch; from safetensors.torch import save_file; sd = torch.load('${path.basename(file)}', map_location='cpu', weights_only=True); ` +
    `save_file({k: v.clone().contiguous() for k, v in sd.items()}, 'model.safetensors')"`;
}
