// A small random GPT-2 saved as a Hugging Face folder, for the chat server's tests: GPT-2's
// vocabulary (the prompts are real text), 16 wide, one layer, a 1,024-token context (long answers,
// so a stop or a disconnect lands mid-answer). Random weights write random tokens, so every answer
// runs to max_tokens unless it stops: good for timing a stop, and the tests compare texts, not sense.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { TINY } from "../../lib/model/config";
import { GPTModel } from "../../lib/model/gpt";
import { saveGPT2Directory } from "../../lib/weights/gpt2-directory";

export const CHAT_TEST_CONFIG = { ...TINY, embDim: 16, nLayers: 1, nHeads: 2, contextLength: 1024 };

/** Save the model into a new temporary folder named `name` (the id the server gives it); returns the folder. */
export async function saveChatTestModel(name = "micro-chat"): Promise<string> {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "chat-model-")), name);
  const model = new GPTModel(CHAT_TEST_CONFIG, { seed: 7 });
  await saveGPT2Directory(model, dir);
  model.dispose();
  return dir;
}
