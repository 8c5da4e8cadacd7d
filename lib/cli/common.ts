/**
 * What every command (finetune, loss, judge, generate, bench, padding-report) shares: error
 * handling, number parsing for options, and starting the engine.
 * (Choosing the model for `--model` is lib/pretrained/select.ts's `chooseModel`.)
 */
import { ConfigError, CourseError } from "../core/errors";
import { ENGINE_CHOICES, EngineChoice, EngineInfo, initEngine } from "../engine";
import { PROMPT_STYLES, PromptStyle } from "../data/prompt";

/**
 * Run a command's main function: a CourseError becomes `error: <message>` and exit
 * code 1 (no stack trace: it is the user's input, not a bug); anything else is a bug
 * and keeps its stack (exit code 2).
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

/**
 * commander parsers for numeric options: a bad value is a ConfigError naming the option,
 * which `runCli` prints as one `error:` line with exit code 1, like every other user error.
 * (`name` is the option without its dashes: commander does not tell a parser which option it parses.)
 */
export const parseIntOption = (name: string, min: number) => (value: string): number => {
  const n = Number(value);
  if (value.trim() === "" || !Number.isInteger(n) || n < min) throw new ConfigError(`--${name} must be an integer >= ${min}, got "${value}"`);
  return n;
};
export const parseNumberOption = (name: string, min: number) => (value: string): number => {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < min) throw new ConfigError(`--${name} must be a number >= ${min}, got "${value}"`);
  return n;
};
export const parseBackend = (value: string): EngineChoice => {
  if (!(ENGINE_CHOICES as readonly string[]).includes(value)) {
    throw new ConfigError(`--backend must be one of ${ENGINE_CHOICES.join(", ")}, got "${value}"`);
  }
  return value as EngineChoice;
};

export const parsePromptStyle = (value: string): PromptStyle => {
  if (!(PROMPT_STYLES as readonly string[]).includes(value)) throw new ConfigError(`--prompt-style must be one of ${PROMPT_STYLES.join(", ")}, got "${value}"`);
  return value as PromptStyle;
};

/** `await initEngine()`, with its one line on stdout (finetune) or stderr (commands whose stdout is the answer). */
export function startEngine(backend: EngineChoice | undefined, toStderr = false): Promise<EngineInfo> {
  return initEngine({ backend, log: (line) => (toStderr ? console.error(line) : console.log(line)) });
}

/** A measured figure for a JSON line: `digits + 1` significant digits. */
export const round = (x: number, digits = 3): number => Number(x.toPrecision(digits + 1));
