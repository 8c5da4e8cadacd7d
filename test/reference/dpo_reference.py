"""PyTorch reference for the DPO golden tests (test/dpo-golden.test.ts), step 2.

The book's DPO code (ch07/04_preference-tuning-with-dpo/dpo-from-scratch.ipynb: the collate function, the
mean log-probabilities under a mask, the DPO loss, the loss of a batch and of a loader), re-written here
from its description, on reference_model.py's GPT: an independent check of the TypeScript library.

Reads test/fixtures/dpo-golden.json (test/reference/dpo_inputs.ts wrote the entries' token ids and the
config), builds the policy with gpt_reference.py's deterministic weights and the reference with the same
formula under another salt (so policy != reference), and adds: the collated batches, the four vectors
of mean log-probabilities, the loss and rewards of the first batch, the gradients of some policy
parameters, and the means over the two batches (the book's compute_dpo_loss_loader).

    npx tsx test/reference/dpo_inputs.ts && $COURSE_HF_PYTHON test/reference/dpo_reference.py

Its functions are imported by dpo_hf_reference.py (the --loss-only check on transformers' GPT-2).
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from reference_model import END_OF_TEXT  # noqa: E402

FIXTURE = os.path.join(HERE, "..", "fixtures", "dpo-golden.json")
HEADER_NEWLINES = 2  # the two "\n" tokens between the prompt and "### Response:", masked with the prompt


def collate(batch, pad_id=END_OF_TEXT, allowed_max_length=None, mask_prompt=True):
    """ch07/04's collate: chosen and rejected padded to one length (the longest of either, plus one);
    a boolean mask per sequence, true on its own tokens, false on the padding and (mask_prompt) on the
    prompt and the header's newlines; everything cut to allowed_max_length."""
    width = 1 + max(max(len(item["chosen"]), len(item["rejected"])) for item in batch)
    out = {"chosen": [], "rejected": [], "chosen_mask": [], "rejected_mask": []}
    for item in batch:
        for key in ("chosen", "rejected"):
            seq = item[key]
            keep = [t < len(seq) for t in range(width)]
            if mask_prompt:
                for t in range(min(len(item["prompt"]) + HEADER_NEWLINES, width)):
                    keep[t] = False
            out[key].append(seq + [pad_id] * (width - len(seq)))
            out[key + "_mask"].append(keep)
    cut = (lambda rows: [r[:allowed_max_length] for r in rows]) if allowed_max_length else (lambda rows: rows)
    return {k: torch.tensor(cut(v)) for k, v in out.items()}


def mean_logprobs(logits, labels, mask=None):
    """Mean log-probability per sequence of its next tokens: logits (B, T, V) predict labels[:, 1:];
    averaged over the positions where mask[:, 1:] is true, or over all of them without a mask."""
    logp = F.log_softmax(logits[:, :-1, :], dim=-1)
    picked = logp.gather(-1, labels[:, 1:].unsqueeze(-1)).squeeze(-1)  # (B, T-1)
    if mask is None:
        return picked.mean(-1)
    m = mask[:, 1:].float()
    return (picked * m).sum(-1) / m.sum(-1)


def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    """-log sigmoid(beta * ((pc - pr) - (rc - rr))), averaged; and the mean chosen and rejected rewards."""
    logits = (policy_chosen - policy_rejected) - (ref_chosen - ref_rejected)
    loss = -F.logsigmoid(beta * logits)
    return loss.mean(), (policy_chosen - ref_chosen).detach().mean(), (policy_rejected - ref_rejected).detach().mean()


def logprobs_of(model, batch):
    """(chosen, rejected) mean log-probabilities of a collated batch under a model returning logits."""
    return tuple(mean_logprobs(model(batch[k]), batch[k], batch[k + "_mask"]) for k in ("chosen", "rejected"))


def batch_terms(batch, policy, reference, beta):
    """The book's compute_dpo_loss_batch: the reference under no_grad, the policy with gradients."""
    pc, pr = logprobs_of(policy, batch)
    with torch.no_grad():
        rc, rr = logprobs_of(reference, batch)
    return dpo_loss(pc, pr, rc, rr, beta), (pc, pr, rc, rr)


def loader_means(batches, policy, reference, beta):
    """The book's compute_dpo_loss_loader over every batch: means of the loss and the two rewards."""
    totals = [0.0, 0.0, 0.0]
    with torch.no_grad():
        for batch in batches:
            (loss, chosen, rejected), _ = batch_terms(batch, policy, reference, beta)
            for i, x in enumerate((loss, chosen, rejected)):
                totals[i] += float(x)
    n = len(batches)
    return {"loss": totals[0] / n, "chosenReward": totals[1] / n, "rejectedReward": totals[2] / n}


def main():
    from gpt_reference import build  # the deterministic weights (numpy); only the golden mode needs them

    with open(FIXTURE) as f:
        fx = json.load(f)
    cfg, beta, bs = fx["config"], fx["beta"], fx["batchSize"]
    torch.manual_seed(0)
    policy = build(cfg, fx["tiedHead"])
    reference = build(cfg, fx["tiedHead"], fx["referenceSalt"])
    enc = fx["encoded"]
    batches = [collate(enc[i:i + bs], allowed_max_length=cfg["contextLength"]) for i in range(0, len(enc), bs)]
    first = batches[0]
    (loss, chosen_reward, rejected_reward), (pc, pr, rc, rr) = batch_terms(first, policy, reference, beta)
    loss.backward()
    names = ["blocks.0.att.wQuery.weight", "blocks.1.ff.fc2.bias", "blocks.1.norm1.scale", "finalNorm.shift", "outHead.weight"]
    grads = {n: {"first": policy.p(n).grad.reshape(-1)[:48].tolist(), "norm": float(policy.p(n).grad.double().norm())} for n in names}
    token = first["chosen"][0, 0].item()  # the first prompt token: its embedding row has a gradient
    grads["tokEmb.weight"] = {"row": token, "values": policy.p("tokEmb.weight").grad[token].tolist(),
                              "norm": float(policy.p("tokEmb.weight").grad.double().norm())}
    no_mask = collate(enc[:bs], mask_prompt=False)
    with torch.no_grad():
        unmasked = mean_logprobs(policy(first["chosen"]), first["chosen"])
    fx["expected"] = {
        "batches": [{k: v.tolist() for k, v in b.items()} for b in batches],
        "firstBatchNoPromptMask": {k: no_mask[k].tolist() for k in ("chosen_mask", "rejected_mask")},
        "logprobs": {"policyChosen": pc.tolist(), "policyRejected": pr.tolist(), "referenceChosen": rc.tolist(), "referenceRejected": rr.tolist()},
        "policyChosenAllPositions": unmasked.tolist(),
        "loss": float(loss.detach()),
        "chosenRewards": float(chosen_reward),
        "rejectedRewards": float(rejected_reward),
        "grads": grads,
        "loader": loader_means(batches, policy, reference, beta),
    }
    fx["torch"] = torch.__version__
    with open(FIXTURE, "w") as f:
        json.dump(fx, f, separators=(",", ":"))
        f.write("\n")
    print("loss", fx["expected"]["loss"], "loader", fx["expected"]["loader"])


if __name__ == "__main__":
    main()
