/**
 * What `npm run dpo` writes into its run folder once training ends (see lib/cli/dpo.ts): the history, the
 * book's two plots, the responses before and after, the model (and a LoRA adapter alone).
 */
import * as path from "path";
import { writeAll, writeFileAtomic } from "../core/atomic-file";
import type { PreferenceEntry } from "../data/preference-data";
import type { GPTModel } from "../model/gpt";
import { generateResponses } from "../generate/batch";
import { saveGPT2Directory } from "../weights/gpt2-directory";
import { saveLoRAAdapter } from "../weights/lora-adapter";
import { DPOHistory, rewardMargins } from "../train/dpo-train";
import { saveLossPlot, SavedPlot } from "../display/loss-plot";

/** The model's responses to `entries` (greedy, at most `maxNewTokens`, the book's section 7.7 extraction). */
export function compareResponses(model: GPTModel, entries: PreferenceEntry[], maxNewTokens: number): Promise<string[]> {
  return generateResponses(model, entries, { maxNewTokens });
}

export interface DPORun {
  policy: GPTModel;
  history: DPOHistory & { stopped: boolean };
  minutes: number;
  options: object & { epochs: number };
  /** the entries whose responses are compared, and the responses before (= the reference) and after */
  compared: PreferenceEntry[];
  before: string[];
  after: string[];
}

/** Write the run's files into `dir` (each atomically), saying each one to `log`. */
export async function saveDPORun(dir: string, run: DPORun, log: (line: string) => void): Promise<void> {
  const write = (name: string, value: unknown) => {
    const file = path.join(dir, name);
    writeFileAtomic(file, (fd) => writeAll(fd, JSON.stringify(value, null, 2) + "\n"));
    log(`saved ${file}`);
  };
  const { stopped, ...curves } = run.history;
  const margins = rewardMargins(curves);
  write("dpo-history.json", { ...curves, trainRewardMargins: margins.train, valRewardMargins: margins.val, stopped, minutes: run.minutes, options: run.options });
  const said = (plot: SavedPlot) => {
    log(`saved ${plot.html}`);
    log(plot.png ? `saved ${plot.png}` : `no ${path.basename(plot.html, ".html")}.png: ${plot.reason} (the HTML plot is there)`);
  };
  const numEpochs = run.options.epochs;
  said(await saveLossPlot(curves, dir, "dpo-loss", { numEpochs, title: "DPO loss" }));
  const marginCurves = { trainLosses: margins.train, valLosses: margins.val, tokensSeen: curves.tokensSeen, epochsAt: curves.epochsAt };
  said(await saveLossPlot(marginCurves, dir, "dpo-reward-margins", { numEpochs, label: "reward margins", title: "DPO reward margins", legend: "lower right" }));
  write(
    "dpo-responses.json",
    run.compared.map((entry, i) => ({ ...entry, reference_response: run.before[i], policy_response: run.after[i] })),
  );
  const modelDir = path.join(dir, "model");
  await saveGPT2Directory(run.policy, modelDir); // with LoRA: merged, a plain GPT-2 folder
  log(`saved ${modelDir}`);
  if (run.policy.lora !== null) {
    const adapterDir = path.join(dir, "lora-adapter");
    await saveLoRAAdapter(run.policy, adapterDir);
    log(`saved ${adapterDir} (the LoRA adapter alone: rank ${run.policy.lora.rank}, alpha ${run.policy.lora.alpha})`);
  }
}
