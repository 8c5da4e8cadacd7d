// The one place that talks to tslab's Jupyter kernel, so the display helpers can send a
// whole mime bundle in ONE output (tslab's public `display.raw` sends a single mime type)
// and update an output in place (Jupyter's display_id / update_display_data).
//
// tslab keeps the sender of the cell now running in `tslab/dist/jupyter.js`
// (`lastWriteDisplayData`), and sets it only inside a kernel. We look for that module in
// node's require cache rather than `require("tslab")`: a notebook's kernel may be a global
// tslab install, and only the copy the kernel loaded holds the live sender.

/** A Jupyter mime bundle: mime type -> data (strings; base64 for images; JSON for *+json types). */
export type MimeBundle = Record<string, unknown>;

type WriteDisplayData = (
  content: { data: MimeBundle; metadata: Record<string, unknown>; transient: { display_id?: string } },
  update: boolean,
) => void;

function kernelWriter(): WriteDisplayData | null {
  for (const [file, mod] of Object.entries(require.cache)) {
    if (!/[\\/]tslab[\\/]dist[\\/]jupyter\.js$/.test(file)) continue;
    const writer = (mod?.exports as { lastWriteDisplayData?: WriteDisplayData | null } | undefined)?.lastWriteDisplayData;
    if (typeof writer === "function") return writer;
  }
  return null;
}

/** True when running inside a tslab kernel (a notebook), false in a terminal or a test. */
export function inNotebook(): boolean {
  return kernelWriter() !== null;
}

/**
 * Send one display output. With `displayId`, the first call creates the output and later calls
 * with `update: true` replace it in place (the front end matches them by id).
 * Returns false when there is no kernel to send to.
 */
export function emitBundle(bundle: MimeBundle, opts: { displayId?: string; update?: boolean; metadata?: Record<string, unknown> } = {}): boolean {
  const write = kernelWriter();
  if (!write) return false;
  write({ data: bundle, metadata: opts.metadata ?? {}, transient: opts.displayId ? { display_id: opts.displayId } : {} }, opts.update === true);
  return true;
}

/** Escape text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}
