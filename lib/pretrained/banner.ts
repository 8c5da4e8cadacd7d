/**
 * The banner a reader must not scroll past: paragraphs wrapped and boxed in '#', used by
 * `chooseModel` (select.ts) to say that the model it returns is NOT PRETRAINED.
 */

/** The banner's text width in characters: fits an 80-100 column terminal and a notebook cell. */
export const BANNER_WIDTH = 88;

/** Words of `text` in lines of at most `width` characters (a long URL gets a line of its own). */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter((w) => w !== "")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  if (line !== "") lines.push(line);
  return lines;
}

/** A box of '#' around paragraphs (a blank line between them), every line padded to the widest. */
export function box(paragraphs: string[], width = BANNER_WIDTH): string {
  const lines = paragraphs.flatMap((p, i) => (i === 0 ? wrap(p, width) : ["", ...wrap(p, width)]));
  const w = Math.max(...lines.map((l) => l.length));
  const bar = "#".repeat(w + 4);
  return [bar, ...lines.map((l) => `# ${l.padEnd(w)} #`), bar].join("\n");
}
