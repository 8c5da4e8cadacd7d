"""
The book's own chapter-7 model and loss, as a learner runs them: what `npm run bench -- --vs-torch` times.

The book (rasbt/LLMs-from-scratch, ch07/01_main-chapter-code/previous_chapters.py and the chapter's
`calc_loss_batch`) builds GPT-2 from torch modules: a multi-head attention that registers its causal
mask as a (context, context) buffer of ones above the diagonal and fills the scores in place, a
LayerNorm and a tanh GELU written out in elementwise torch ops, nn.Linear layers (weights stored
(out, in)), nn.Embedding tables, and a loss that is `cross_entropy` over the flattened logits.
This file is written here, in our own words, but it runs the same modules and the same torch ops
in the same order (the ops decide what autograd keeps, hence the time and the memory), and the
same default initialisation (nn.Linear's and nn.Embedding's own).

reference_model.py is the other anchor: the same network written from the book's description on
torch's fused building blocks (F.layer_norm, F.gelu), which keeps fewer tensors for the backward
pass. Both are selectable in torch_bench.py (job["reference"]).
"""
import torch
import torch.nn as nn


class CausalAttention(nn.Module):
    """The book's MultiHeadAttention: q/k/v projections, heads, a registered mask buffer, softmax, output projection."""

    def __init__(self, d_in, d_out, context_length, drop_rate, n_heads, qkv_bias=False):
        super().__init__()
        assert d_out % n_heads == 0, "the width must split evenly into heads"
        self.d_out, self.n_heads, self.head_dim = d_out, n_heads, d_out // n_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(drop_rate)
        # a float buffer of ones strictly above the diagonal, cut to the sequence and made boolean each call
        self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length), diagonal=1))

    def forward(self, x):
        b, t, _ = x.shape
        # keys first, then queries and values, as the book computes them
        k = self.W_key(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)  # (b, heads, t, head_dim)
        q = self.W_query(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        v = self.W_value(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        scores = q @ k.transpose(2, 3)  # (b, heads, t, t)
        scores.masked_fill_(self.mask.bool()[:t, :t], -torch.inf)  # in place, as the book does
        weights = torch.softmax(scores / k.shape[-1] ** 0.5, dim=-1)
        weights = self.dropout(weights)
        ctx = (weights @ v).transpose(1, 2)  # (b, t, heads, head_dim)
        return self.out_proj(ctx.reshape(b, t, self.d_out))


class LayerNorm(nn.Module):
    """mean and biased variance over the last axis, written out, then scale and shift."""

    def __init__(self, emb_dim):
        super().__init__()
        self.eps = 1e-5
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))

    def forward(self, x):
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        return self.scale * ((x - mean) / torch.sqrt(var + self.eps)) + self.shift


class GELU(nn.Module):
    """The tanh approximation in elementwise ops: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""

    def forward(self, x):
        return 0.5 * x * (1 + torch.tanh(torch.sqrt(torch.tensor(2.0 / torch.pi)) * (x + 0.044715 * torch.pow(x, 3))))


class FeedForward(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c = cfg["emb_dim"]
        self.layers = nn.Sequential(nn.Linear(c, 4 * c), GELU(), nn.Linear(4 * c, c))

    def forward(self, x):
        return self.layers(x)


class TransformerBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.att = CausalAttention(cfg["emb_dim"], cfg["emb_dim"], cfg["context_length"], cfg["drop_rate"], cfg["n_heads"], cfg["qkv_bias"])
        self.ff = FeedForward(cfg)
        self.norm1 = LayerNorm(cfg["emb_dim"])
        self.norm2 = LayerNorm(cfg["emb_dim"])
        self.drop_resid = nn.Dropout(cfg["drop_rate"])

    def forward(self, x):
        x = self.drop_resid(self.att(self.norm1(x))) + x  # the book adds the shortcut after the branch's dropout
        return self.drop_resid(self.ff(self.norm2(x))) + x


class GPTModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])
        self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"])
        self.drop_emb = nn.Dropout(cfg["drop_rate"])
        self.trf_blocks = nn.Sequential(*[TransformerBlock(cfg) for _ in range(cfg["n_layers"])])
        self.final_norm = LayerNorm(cfg["emb_dim"])
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)

    def forward(self, idx):
        _, t = idx.shape
        x = self.tok_emb(idx) + self.pos_emb(torch.arange(t, device=idx.device))
        x = self.trf_blocks(self.drop_emb(x))
        return self.out_head(self.final_norm(x))


def book_config(cfg):
    """The library's config names (lib/model/config.ts) as the book's dictionary keys."""
    return {"vocab_size": cfg["vocabSize"], "context_length": cfg["contextLength"], "emb_dim": cfg["embDim"],
            "n_heads": cfg["nHeads"], "n_layers": cfg["nLayers"], "drop_rate": cfg["dropRate"], "qkv_bias": cfg["qkvBias"]}


def calc_loss_batch(input_batch, target_batch, model, device):
    """The chapter's loss: cross-entropy of the flattened logits (targets of -100, cross_entropy's default ignore_index, skipped)."""
    input_batch, target_batch = input_batch.to(device), target_batch.to(device)
    logits = model(input_batch)
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_batch.flatten())


def generate_text_simple(model, idx, max_new_tokens, context_size):
    """The book's greedy loop without a cache: the whole (cropped) context through the model for every new token."""
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = model(idx[:, -context_size:])
        idx = torch.cat((idx, torch.argmax(logits[:, -1, :], dim=-1, keepdim=True)), dim=1)
    return idx


class LoRALayer(nn.Module):
    """Appendix E's low-rank update: alpha * x @ A @ B, A (in, rank) Kaiming-uniform, B (rank, out) zero."""

    def __init__(self, in_dim, out_dim, rank, alpha):
        super().__init__()
        self.A = nn.Parameter(torch.empty(in_dim, rank))
        nn.init.kaiming_uniform_(self.A, a=5 ** 0.5)
        self.B = nn.Parameter(torch.zeros(rank, out_dim))
        self.alpha = alpha

    def forward(self, x):
        return self.alpha * (x @ self.A @ self.B)


class LinearWithLoRA(nn.Module):
    """A frozen nn.Linear and a LoRA layer beside it, their outputs added."""

    def __init__(self, linear, rank, alpha):
        super().__init__()
        self.linear = linear
        self.lora = LoRALayer(linear.in_features, linear.out_features, rank, alpha)

    def forward(self, x):
        return self.linear(x) + self.lora(x)


def replace_linear_with_lora(module, rank, alpha):
    """Appendix E: every nn.Linear under `module` (the head included) wrapped with LoRA, recursively."""
    for name, child in module.named_children():
        if isinstance(child, nn.Linear):
            setattr(module, name, LinearWithLoRA(child, rank, alpha))
        else:
            replace_linear_with_lora(child, rank, alpha)


def add_book_lora(model, rank, alpha):
    """The appendix's recipe: freeze every parameter, then wrap the linear layers (only A and B train)."""
    for p in model.parameters():
        p.requires_grad = False
    replace_linear_with_lora(model, rank, alpha)
    return model
