/**
 * libtensorflow's start-up chatter, kept off the learner's screen.
 *
 * Loading libtensorflow 2.21 prints two lines straight to file descriptor 2 from C++, whatever
 * `TF_CPP_MIN_LOG_LEVEL` says (they come from static initialisers, before TensorFlow reads it):
 *
 *   WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
 *   I0000 00:00:… port.cc:153] oneDNN custom operations are on. You may see slightly different …
 *
 * Node cannot redirect a C library's stderr by itself, so `withNativeStderr` points descriptor 2
 * at a temporary file for the duration of a synchronous load (libc's dup/dup2 through koffi, the
 * foreign-function package the BLAS matmul already uses), then puts it back and writes every
 * captured line that is not one of those two to the real stderr: nothing else is lost, only
 * delayed. Without koffi, or off Linux and macOS, the load runs as it is and the lines show.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** The lines dropped: absl's notice about its own initialisation, and TensorFlow's oneDNN notice. */
export const NATIVE_CHATTER: readonly RegExp[] = [
  /^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$/,
  /^I\d{4} [\d:.]+\s+\d+ port\.cc:\d+\] oneDNN custom operations are on\./,
];

/** What a captured load printed, without the chatter (kept lines, in order). */
export function withoutChatter(text: string): { kept: string[]; dropped: string[] } {
  const kept: string[] = [];
  const dropped: string[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    (NATIVE_CHATTER.some((re) => re.test(line)) ? dropped : kept).push(line);
  }
  return { kept, dropped };
}

interface Libc {
  dup(fd: number): number;
  dup2(from: number, to: number): number;
  close(fd: number): number;
}

let libc: Libc | null | undefined;

function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  const name = process.platform === "linux" ? "libc.so.6" : process.platform === "darwin" ? "libSystem.B.dylib" : null;
  if (name === null) return (libc = null);
  try {
    const requireOptional: (id: string) => unknown = (id) => require(id); // koffi is optional
    const koffi = requireOptional("koffi") as { load(p: string): { func(sig: string): unknown } };
    const lib = koffi.load(name);
    libc = {
      dup: lib.func("int dup(int fd)") as Libc["dup"],
      dup2: lib.func("int dup2(int oldfd, int newfd)") as Libc["dup2"],
      close: lib.func("int close(int fd)") as Libc["close"],
    };
  } catch {
    libc = null;
  }
  return libc;
}

/**
 * Run `load` (synchronous) with file descriptor 2 going to a temporary file; afterwards, write what
 * it printed, less `NATIVE_CHATTER`, to stderr. Returns load's result and whether TensorFlow's
 * oneDNN notice was among the dropped lines. An exception from `load` is rethrown after stderr is
 * restored and the kept lines are written. `COURSE_NATIVE_LOG=1` leaves stderr alone.
 */
export function withNativeStderr<T>(load: () => T): { result: T; oneDNN: boolean } {
  const c = process.env.COURSE_NATIVE_LOG === "1" ? null : loadLibc();
  if (c === null) return { result: load(), oneDNN: false };
  const file = path.join(os.tmpdir(), `course-native-stderr-${process.pid}-${Date.now()}.log`);
  const fd = fs.openSync(file, "w+");
  const saved = c.dup(2);
  if (saved < 0 || c.dup2(fd, 2) < 0) {
    if (saved >= 0) c.close(saved);
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
    return { result: load(), oneDNN: false };
  }
  let outcome: { ok: true; value: T } | { ok: false; error: unknown };
  try {
    outcome = { ok: true, value: load() };
  } catch (error) {
    outcome = { ok: false, error };
  }
  c.dup2(saved, 2);
  c.close(saved);
  fs.closeSync(fd);
  const { kept, dropped } = withoutChatter(fs.readFileSync(file, "utf8"));
  fs.rmSync(file, { force: true });
  if (kept.length > 0) process.stderr.write(kept.join("\n") + "\n");
  if (!outcome.ok) throw outcome.error;
  return { result: outcome.value, oneDNN: dropped.some((line) => line.includes("oneDNN")) };
}
