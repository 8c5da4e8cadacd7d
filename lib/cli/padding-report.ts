/**
 * `npm run padding-report`: how much of the training batches is padding, plain shuffled
 * batches vs length-grouped batches (lib/data/length-grouping.ts), on the 935 training
 * entries with the book's train-loader settings (batch 8, shuffle, drop last).
 *
 * Only token counts are needed, so no tensors are made and no engine is started.
 */
import { Command } from "commander";
import { BOOK_BATCH_SIZE, BOOK_SEED } from "../core/book";
import { DEFAULT_DATA_FILE, loadInstructionData } from "../data/instruction-data";
import { splitData } from "../data/split";
import { InstructionDataset } from "../data/dataset";
import { comparePadding } from "../data/padding";
import { DEFAULT_MEGA_BATCH_FACTOR } from "../data/length-grouping";
import { parseIntOption, runCli } from "./common";

async function main(): Promise<void> {
  const program = new Command()
    .name("padding-report")
    .description("Padding fraction of the training batches: plain shuffled vs length-grouped")
    .option("--data <file>", "instruction data file", DEFAULT_DATA_FILE)
    .option("--batch-size <n>", "sequences per batch", parseIntOption("batch-size", 1), BOOK_BATCH_SIZE)
    .option("--seed <n>", "shuffle seed", parseIntOption("seed", 0), BOOK_SEED)
    .option("--epochs <n>", "sum over epochs 0..n-1 (each epoch shuffles differently)", parseIntOption("epochs", 1), 1)
    .option("--mega-batch <n>", "mega-batch size, in batches", parseIntOption("mega-batch", 1), DEFAULT_MEGA_BATCH_FACTOR)
    .option("--max-length <n>", "allowedMaxLength: cut batches to this many tokens", parseIntOption("max-length", 1))
    .option("--json", "print the totals as JSON instead of a table")
    .parse();
  const opts = program.opts<{
    data: string;
    batchSize: number;
    seed: number;
    epochs: number;
    megaBatch: number;
    maxLength?: number;
    json?: boolean;
  }>();

  const { train } = splitData(await loadInstructionData(opts.data), { source: opts.data });
  const dataset = new InstructionDataset(train);
  const totals = {
    plain: { batches: 0, totalTokens: 0, paddingTokens: 0 },
    grouped: { batches: 0, totalTokens: 0, paddingTokens: 0 },
  };
  for (let epoch = 0; epoch < opts.epochs; epoch++) {
    const result = comparePadding(dataset, {
      batchSize: opts.batchSize,
      seed: opts.seed,
      epoch,
      megaBatchFactor: opts.megaBatch,
      allowedMaxLength: opts.maxLength,
    });
    for (const kind of ["plain", "grouped"] as const) {
      totals[kind].batches += result[kind].batches.length;
      totals[kind].totalTokens += result[kind].totalTokens;
      totals[kind].paddingTokens += result[kind].paddingTokens;
    }
  }
  const fraction = (t: { totalTokens: number; paddingTokens: number }) => t.paddingTokens / t.totalTokens;

  if (opts.json) {
    const out = Object.fromEntries(
      (["plain", "grouped"] as const).map((k) => [k, { ...totals[k], paddingFraction: fraction(totals[k]) }]),
    );
    console.log(JSON.stringify({ entries: dataset.length, ...opts, ...out }, null, 2));
    return;
  }
  const epochs = opts.epochs === 1 ? "epoch 0" : `epochs 0-${opts.epochs - 1}`;
  console.log(
    `Padding in the training batches: ${dataset.length} entries, batch ${opts.batchSize}, drop last, ` +
      `seed ${opts.seed}, ${epochs}` + (opts.maxLength ? `, max length ${opts.maxLength}` : ""),
  );
  const rows = [
    ["batching", "batches", "positions", "padding", "padding fraction"],
    ...(["plain", "grouped"] as const).map((k) => [
      k === "plain" ? "plain shuffled" : `length-grouped (x${opts.megaBatch})`,
      String(totals[k].batches),
      String(totals[k].totalTokens),
      String(totals[k].paddingTokens),
      `${(100 * fraction(totals[k])).toFixed(1)}%`,
    ]),
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const row of rows) {
    console.log(row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join("  "));
  }
  const saved = 1 - totals.grouped.totalTokens / totals.plain.totalTokens;
  console.log(`Length-grouped batches compute ${(100 * saved).toFixed(1)}% fewer positions.`);
}

if (require.main === module) runCli(main);
