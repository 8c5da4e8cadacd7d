"""
The loss of a saved Hugging Face GPT-2 folder, computed by transformers itself, for
test/cli-lora.test.ts (a LoRA fine-tune saved merged must load there unchanged):

    python hf_loss.py MODEL_DIR BATCH.json      BATCH.json: {"inputs": [[ids]], "targets": [[ids or -100]]}

Prints one JSON line: {"loss": mean cross-entropy over the targets that are not -100, "transformers": version}.
"""
import json
import sys

import torch
import torch.nn.functional as F
import transformers
from transformers import GPT2LMHeadModel


def main():
    model_dir, batch_file = sys.argv[1], sys.argv[2]
    with open(batch_file) as f:
        batch = json.load(f)
    model = GPT2LMHeadModel.from_pretrained(model_dir)
    model.eval()
    inputs = torch.tensor(batch["inputs"])
    targets = torch.tensor(batch["targets"])
    with torch.no_grad():
        logits = model(inputs).logits  # (B, T, V)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
    print(json.dumps({"loss": float(loss), "transformers": transformers.__version__}))


if __name__ == "__main__":
    main()
