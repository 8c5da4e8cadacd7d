/**
 * Writing float32 tensors as a safetensors file (the layout is in safetensors-format.ts),
 * the way the reference writer lays it out: tensors back to back in the given order, the
 * header padded with spaces so the data starts 8-byte aligned.
 */
import * as os from "node:os";
import { writeAll, writeFileAtomic } from "../core/atomic-file";
import { WeightsError } from "../core/errors";
import { fmtShape, numel, swapBytes } from "./safetensors-format";

/** A tensor as the writer takes it: float32 values, given directly or made on demand
 *  (so a 1.4 GB model is downloaded from the engine one tensor at a time). */
export interface TensorToWrite {
  shape: number[];
  data: Float32Array | (() => Float32Array);
}

/**
 * Writes float32 tensors as a safetensors file, atomically (lib/core/atomic-file.ts): a crash
 * at any moment leaves either the old file or the new one, never half of one.
 */
export function writeSafetensors(
  file: string,
  tensors: Map<string, TensorToWrite> | Record<string, TensorToWrite>,
  metadata: Record<string, string> = {},
): void {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    const bytes = numel(t.shape) * 4;
    header[name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  // pad the header with spaces so the data starts 8-byte aligned, as the reference writer does
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBuf = Buffer.from(json, "utf8");
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(headerBuf.length));

  writeFileAtomic(file, (fd) => {
    writeAll(fd, lenBuf);
    writeAll(fd, headerBuf);
    for (const [name, t] of entries) {
      const data = typeof t.data === "function" ? t.data() : t.data;
      if (data.length !== numel(t.shape)) {
        throw new WeightsError(`${file}: tensor "${name}": ${data.length} values do not fill shape ${fmtShape(t.shape)}`);
      }
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      if (os.endianness() === "BE") {
        const copy = Uint8Array.from(bytes);
        swapBytes(copy, 4);
        writeAll(fd, copy);
      } else {
        writeAll(fd, bytes);
      }
    }
  });
}
