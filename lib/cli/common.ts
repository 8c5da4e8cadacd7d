/**
 * What the three commands (finetune, evaluate, generate) share: error handling,
 * number parsing for options, and starting the engine.
 * (Choosing the model for `--model` is lib/pretrained/select.ts's `chooseModel`.)
 */
import { InvalidArgumentError } from "commander";
import { CourseError } from "../core/errors";
import { ENGINE_CHOICES, EngineChoice, initEngine } from "../engine";

/**
 * Run a command's main function: a CourseError becomes `error: <message>` and exit
 * code 1 (no stack trace: it is the user's input, not a bug); anything else is a bug
 * and keeps its stack.
 */
export function runCli(main: () => Promise<void>): void {
  main().then(
    () => process.exit(process.exitCode ?? 0),
    (err: unknown) => {
      if (err instanceof CourseError) {
        console.error(`error: ${err.message}`);
        process.exit(1);
      }
      console.error(err);
      process.exit(2);
    },
  );
}

/** commander parsers that reject bad numbers with a message naming the option. */
export const parseIntOption = (min: number) => (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}, got "${value}"`);
  return n;
};
export const parseNumberOption = (min: number) => (value: string): number => {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < min) throw new InvalidArgumentError(`expected a number >= ${min}, got "${value}"`);
  return n;
};
export const parseBackend = (value: string): EngineChoice => {
  if (!(ENGINE_CHOICES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`expected one of ${ENGINE_CHOICES.join(", ")}`);
  }
  return value as EngineChoice;
};

/** `await initEngine()`, with its one line on stdout (finetune) or stderr (commands whose stdout is the answer). */
export async function startEngine(backend: EngineChoice | undefined, toStderr = false): Promise<void> {
  await initEngine({ backend, log: (line) => (toStderr ? console.error(line) : console.log(line)) });
}
