#!/usr/bin/env python3
"""PyTorch reference for `tools bench model` in `make bench`.

The same architecture as earl's `small` preset (the Qwen2 decoder: RMSNorm,
RoPE, grouped-query attention with q/k/v biases, SwiGLU MLP, untied lm head)
written for earl in plain torch (the way transformers' Qwen2 eager path
computes it: repeat_kv, causal softmax in float32), float32 on the CPU with
the given thread count, timed on one forward + backward step of batch x seq
tokens with the mean token log-likelihood as the loss. Prints the result
beside earl's figures (read from earl's JSON) and their ratio.

    python3 model_ref.py CONFIG_JSON EARL_JSON [threads]
"""
import json
import math
import resource
import sys
import time

import torch
import torch.nn.functional as F


class Layer(torch.nn.Module):
    def __init__(s, h, heads, kv, inter, eps):
        super().__init__()
        d = h // heads
        s.heads, s.kv, s.d, s.eps = heads, kv, d, eps
        s.q = torch.nn.Linear(h, heads * d)
        s.k = torch.nn.Linear(h, kv * d)
        s.v = torch.nn.Linear(h, kv * d)
        s.o = torch.nn.Linear(heads * d, h, bias=False)
        s.gate = torch.nn.Linear(h, inter, bias=False)
        s.up = torch.nn.Linear(h, inter, bias=False)
        s.down = torch.nn.Linear(inter, h, bias=False)
        s.n1 = torch.nn.Parameter(torch.ones(h))
        s.n2 = torch.nn.Parameter(torch.ones(h))

    def norm(s, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + s.eps) * w

    def forward(s, x, cos, sin, mask):
        B, T, _ = x.shape
        h = s.norm(x, s.n1)
        q = s.q(h).view(B, T, s.heads, s.d).transpose(1, 2)
        k = s.k(h).view(B, T, s.kv, s.d).transpose(1, 2)
        v = s.v(h).view(B, T, s.kv, s.d).transpose(1, 2)

        def rot(t):
            a, b = t[..., : s.d // 2], t[..., s.d // 2:]
            return t * cos + torch.cat((-b, a), -1) * sin
        q, k = rot(q), rot(k)
        rep = s.heads // s.kv
        k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(s.d) + mask
        att = torch.softmax(att, -1, dtype=torch.float32) @ v
        x = x + s.o(att.transpose(1, 2).reshape(B, T, -1))
        h = s.norm(x, s.n2)
        return x + s.down(F.silu(s.gate(h)) * s.up(h))


def main():
    cfg = json.load(open(sys.argv[1]))
    earl = json.load(open(sys.argv[2]))
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else earl["threads"]
    torch.set_num_threads(threads)
    t = cfg.get("text_config", cfg)
    h, L, heads, kv = t["hidden_size"], t["num_hidden_layers"], t["num_attention_heads"], t["num_key_value_heads"]
    inter, vocab, eps, theta = t["intermediate_size"], t["vocab_size"], t["rms_norm_eps"], t["rope_theta"]
    B, T = earl["batch"], earl["seq"]
    torch.manual_seed(0)
    emb = torch.nn.Embedding(vocab, h)
    layers = torch.nn.ModuleList([Layer(h, heads, kv, inter, eps) for _ in range(L)])
    norm = torch.nn.Parameter(torch.ones(h))
    head = torch.nn.Linear(h, vocab, bias=False)
    params = list(emb.parameters()) + list(layers.parameters()) + [norm] + list(head.parameters())
    d = h // heads
    inv = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    ang = torch.arange(T).float()[:, None] * inv[None, :]
    ang = torch.cat((ang, ang), -1)
    cos, sin = ang.cos(), ang.sin()
    mask = torch.full((T, T), float("-inf")).triu(1)
    ids = torch.randint(0, vocab, (B, T))

    def step():
        for p in params:
            p.grad = None
        x = emb(ids)
        for layer in layers:
            x = layer(x, cos, sin, mask)
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * norm
        logits = head(x[:, :-1])
        lp = torch.log_softmax(logits.float(), -1).gather(-1, ids[:, 1:, None])
        loss = -lp.mean()
        loss.backward()

    step()  # warm-up
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t0)
    tokens = B * T
    ref = tokens / best
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print("%-54s %12s %14s %10s" % ("forward + backward, batch %d x %d tokens" % (B, T), "tokens/s", "peak RSS MB", "vs torch"))
    print("%-54s %12.0f %14.0f %9.2fx" % ("earl (Go, OpenBLAS), %d threads" % earl["threads"], earl["tokens_per_s"],
                                          earl["peak_rss_bytes"] / 1e6, earl["tokens_per_s"] / ref))
    print("%-54s %12.0f %14.0f %9.2fx" % ("torch %s float32, %d threads" % (torch.__version__, threads), ref, peak / 1e6, 1.0))


if __name__ == "__main__":
    main()
