// Starts test/helpers/save-then-die.ts as a child process for the kill -9 tests
// (weights-kill, checkpoint-kill), and makes sure none is left running after the tests.
import { ChildProcess, spawn } from "node:child_process";
import * as path from "node:path";

const CHILD = path.join(__dirname, "save-then-die.ts");
const children: ChildProcess[] = [];

/** node with tsx's loader (no tsx wrapper process), so SIGKILL reaches the writer itself.
 *  `exited` resolves with the signal that ended it, once all of its output has been read. */
export function startSaver(args: string[]): { child: ChildProcess; exited: Promise<NodeJS.Signals | null> } {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, ...args], {
    cwd: path.join(__dirname, "..", ".."),
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.on("close", (code, signal) => {
      if (code) console.error(`save-then-die exited with ${code}: ${err}`);
      resolve(signal);
    }),
  );
  return { child, exited };
}

/** For `after()`: never leave a saver running. */
export function killSavers(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
}
