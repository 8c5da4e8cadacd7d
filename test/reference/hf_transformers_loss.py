"""
The loss of a saved model as Hugging Face transformers computes it, for test/hf-transformers-load.test.ts:
the folder `finetune` wrote is loaded with `GPT2LMHeadModel.from_pretrained` (transformers' own reader of
config.json and model.safetensors), run in eval mode on the batch given, and the masked cross-entropy
(-100 ignored) printed as JSON. Needs torch and transformers (the venv .ci/run makes under .cache/venv).

  python test/reference/hf_transformers_loss.py MODEL_DIR '{"inputs": [[...]], "targets": [[...]]}'
"""
import json
import sys

import torch
import torch.nn.functional as F
import transformers
from transformers import GPT2LMHeadModel


def main():
    model_dir, batch = sys.argv[1], json.loads(sys.argv[2])
    model = GPT2LMHeadModel.from_pretrained(model_dir)
    model.eval()
    x = torch.tensor(batch["inputs"])
    y = torch.tensor(batch["targets"])
    with torch.no_grad():
        logits = model(x).logits  # (B, T, V)
    loss = F.cross_entropy(logits.flatten(0, 1).double(), y.flatten(), ignore_index=-100)
    tied = model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
    print(json.dumps({"loss": loss.item(), "tied": tied, "transformers": transformers.__version__, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
