/**
 * Errors the course raises on bad input (a data file, a weights file, a config).
 *
 * Each carries a one-line message naming what is wrong and where (file, entry
 * index, field, tensor). The command-line tools catch `CourseError` and print
 * `error: <message>` with exit code 1, never a stack trace; anything else is a bug.
 */
export class CourseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A data file that cannot be used: not JSON, a missing field, an empty split… */
export class DataError extends CourseError {}

/** A weights file or folder that cannot be used: truncated, wrong shapes, a pickle… */
export class WeightsError extends CourseError {}

/** A configuration that does not make sense: unknown model name, bad option value… */
export class ConfigError extends CourseError {}

/** A setup step that cannot go on: a missing tool (pip, a compiler), a download or build that failed… */
export class SetupError extends CourseError {}

/** A judge server that cannot be used: not reachable, the model not pulled, its answers cut off… */
export class JudgeError extends CourseError {}

/** A NaN or infinite loss: training on would only spread NaN through every weight. */
export class TrainingError extends CourseError {}
