/**
 * `npm run generate -- --weights DIR --instruction TEXT [--input TEXT]` (or `--prompt RAW`):
 * prints only the model's response, extracted as in section 7.7: the text generated after
 * the prompt, with "### Response:" removed and whitespace trimmed. With --instruction the
 * prompt is the book's `format_input` (Alpaca template without the response header).
 * The engine line goes to stderr, so stdout is only the response.
 */
import type { EngineChoice } from "../engine";
import { Command } from "commander";
import { formatInput, PROMPT_STYLES, PromptStyle } from "../data/prompt";
import { loadGPT2Directory } from "../weights/gpt2-directory";
import { responseForPrompt } from "../generate/generate";
import { BOOK_MAX_NEW_TOKENS, BOOK_SEED } from "../core/book";
import { ConfigError } from "../core/errors";
import { parseBackend, parseIntOption, parseNumberOption, parsePromptStyle, runCli, startEngine } from "./common";

interface GenerateCliOptions {
  weights: string;
  instruction?: string;
  input?: string;
  prompt?: string;
  maxNewTokens: number;
  temperature: number;
  topK?: number;
  seed: number;
  promptStyle: PromptStyle;
  backend?: EngineChoice;
}

async function main(): Promise<void> {
  const opts = new Command("generate")
    .description("Generate a response with a (fine-tuned) GPT-2 folder; prints only the response")
    .requiredOption("--weights <dir>", "a Hugging Face GPT-2 folder (config.json + model.safetensors)")
    .option("--instruction <text>", "the instruction (formatted with the Alpaca template)")
    .option("--input <text>", "optional input for the instruction", "")
    .option("--prompt <raw>", "a raw prompt, used as is (instead of --instruction)")
    .option("--max-new-tokens <n>", "tokens to generate at most", parseIntOption("max-new-tokens", 0), BOOK_MAX_NEW_TOKENS)
    .option("--temperature <x>", "0 = greedy; > 0 samples from softmax(logits / temperature)", parseNumberOption("temperature", 0), 0)
    .option("--top-k <k>", "sample only among the k most likely tokens", parseIntOption("top-k", 1))
    .option("--seed <n>", "seed for sampling", parseIntOption("seed", 0), BOOK_SEED)
    .option("--prompt-style <name>", `prompt format the model was fine-tuned on: ${PROMPT_STYLES.join(" | ")}`, parsePromptStyle, "alpaca")
    .option("--backend <name>", "tensorflow | webgpu | wasm | cpu | auto (default: $COURSE_BACKEND or auto)", parseBackend)
    .parse()
    .opts<GenerateCliOptions>();
  if ((opts.instruction === undefined) === (opts.prompt === undefined)) {
    throw new ConfigError("give either --instruction TEXT (with optional --input TEXT) or --prompt RAW, not both or neither");
  }
  if (opts.prompt !== undefined && opts.input) throw new ConfigError("--input goes with --instruction, not with --prompt");
  await startEngine(opts.backend, true);
  const model = await loadGPT2Directory(opts.weights);
  const prompt = opts.prompt ?? formatInput({ instruction: opts.instruction as string, input: opts.input ?? "" }, opts.promptStyle);
  const response = await responseForPrompt(model, prompt, {
    maxNewTokens: opts.maxNewTokens,
    temperature: opts.temperature,
    topK: opts.topK,
    seed: opts.seed,
    promptStyle: opts.promptStyle,
  });
  console.log(response);
  model.dispose();
}

if (require.main === module) runCli(main);
