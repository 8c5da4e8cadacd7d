/**
 * For tests that need the native engine (tfjs-node, libtensorflow): start it, or say why not.
 *
 * Such a test runs wherever the native engine is built, whatever COURSE_BACKEND says (each test
 * file is its own process). Where it is not built the test is skipped with the reason in the
 * report, except when COURSE_BACKEND=tensorflow asks for it: then it fails, so a CI pass meant for
 * the native engine cannot skip it silently.
 */
import { initEngine } from "../../lib/engine";

/** null once the native engine runs; else the reason to skip. Throws when COURSE_BACKEND=tensorflow and it cannot start. */
export async function startNativeEngine(): Promise<string | null> {
  try {
    await initEngine({ backend: "tensorflow", log: () => {} });
    return null;
  } catch (err) {
    if (process.env.COURSE_BACKEND === "tensorflow") throw err;
    return `needs the native engine (npm run setup:tensorflow): ${(err as Error).message}`;
  }
}
