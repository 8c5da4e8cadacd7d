/**
 * Train / test / validation split (section 7.2), in file order like the book:
 *   train_portion = int(len(data) * 0.85); test_portion = int(len(data) * 0.1); val = the rest.
 * For the 1,100 entries that is 935 / 110 / 55.
 */
import { DataError } from "../core/errors";

/** Fractions of the book's split; validation gets whatever is left. */
export const TRAIN_FRACTION = 0.85;
export const TEST_FRACTION = 0.1;

export interface DataSplit<T> {
  train: T[];
  test: T[];
  val: T[];
}

export interface SplitOptions {
  /** named in the error message when a split comes out empty (e.g. the data file) */
  source?: string;
  /** allow an empty split instead of throwing (a loss over an empty loader is NaN) */
  allowEmpty?: boolean;
}

export function splitData<T>(entries: T[], opts: SplitOptions = {}): DataSplit<T> {
  const trainPortion = Math.floor(entries.length * TRAIN_FRACTION);
  const testPortion = Math.floor(entries.length * TEST_FRACTION);
  const split = {
    train: entries.slice(0, trainPortion),
    test: entries.slice(trainPortion, trainPortion + testPortion),
    val: entries.slice(trainPortion + testPortion),
  };
  if (!opts.allowEmpty) {
    for (const name of ["train", "test", "val"] as const) {
      if (split[name].length === 0) {
        const where = opts.source ? `${opts.source}: ` : "";
        throw new DataError(
          `${where}the ${name} split is empty (${entries.length} entries give ` +
            `${split.train.length}/${split.test.length}/${split.val.length} train/test/val; at least 10 entries are needed)`,
        );
      }
    }
  }
  return split;
}
