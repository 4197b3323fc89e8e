#!/usr/bin/env python3
"""Independent float64 PyTorch forward of Qwen2-Audio / the Qwen2.5-Omni thinker.

A second reference for ref64 (the Go float64 oracle), written from the
published architecture with torch.nn.functional ops -- not from transformers'
code and not from the Go code -- so that two independent derivations have to
agree. It reads the model directory itself (config.json and the safetensors
files, parsed here with numpy), batches audios the way transformers does
(Qwen2-Audio: one padded batch with a key mask; Omni: every chunk of every
audio in one batch, padded to the longest chunk, with a block-diagonal mask
over the concatenated rows) and writes logits and activations as float64 .npy.

usage: torch_forward.py CASE_DIR
  CASE_DIR/case.json: {"model_dir": ..., "ids": "ids.npy",
                       "audios": [{"mel": "mel0.npy", "valid_frames": T}, ...]}
  writes CASE_DIR/out/<name>.npy for logits, embeds, layer.J, norm,
  audio.K.conv2, audio.K.layer.J, audio.K.out (names as in ref64.Forward).
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)


def load_safetensors(model_dir):
    out = {}
    for fn in sorted(os.listdir(model_dir)):
        if not fn.endswith(".safetensors"):
            continue
        with open(os.path.join(model_dir, fn), "rb") as f:
            data = f.read()
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + n])
        base = 8 + n
        for name, info in header.items():
            if name == "__metadata__":
                continue
            b, e = info["data_offsets"]
            raw = data[base + b : base + e]
            dt = info["dtype"]
            if dt == "F32":
                arr = np.frombuffer(raw, "<f4")
            elif dt == "F64":
                arr = np.frombuffer(raw, "<f8")
            elif dt == "F16":
                arr = np.frombuffer(raw, "<f2")
            elif dt == "BF16":
                arr = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
            else:
                raise ValueError(f"{fn}: {name}: dtype {dt}")
            out[name] = torch.from_numpy(arr.astype(np.float64).reshape(info["shape"]))
    return out


def read_config(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        c = json.load(f)
    if c.get("model_type") == "qwen2_audio":
        return dict(family="qwen2-audio", text=c["text_config"], audio=c["audio_config"],
                    audio_token=c["audio_token_index"], prefix="",
                    tied=c["text_config"].get("tie_word_embeddings", False))
    prefix = ""
    if "thinker_config" in c:
        c, prefix = c["thinker_config"], "thinker."
    return dict(family="qwen2.5-omni", text=c["text_config"], audio=c["audio_config"],
                audio_token=c["audio_token_index"], prefix=prefix,
                tied=c.get("tie_word_embeddings", c["text_config"].get("tie_word_embeddings", False)))


def linear(W, name, x, bias=True):
    return F.linear(x, W[name + ".weight"], W[name + ".bias"] if bias else None)


def layer_norm(W, name, x):
    return F.layer_norm(x, x.shape[-1:], W[name + ".weight"], W[name + ".bias"], 1e-5)


def encoder_layers(W, pre, a, x, mask, acts, spans):
    """Pre-LN Whisper layers over x [B, S, d] with additive mask [B, 1, S, S].
    spans maps each audio index to (batch row, first row, last row) slices of
    x whose concatenation is that audio's rows, for the activations."""
    d, H = a["d_model"], a["encoder_attention_heads"]
    hd = d // H
    B, S, _ = x.shape
    for j in range(a["encoder_layers"]):
        p = f"{pre}layers.{j}."
        r = x
        y = layer_norm(W, p + "self_attn_layer_norm", x)
        q = linear(W, p + "self_attn.q_proj", y) * hd ** -0.5
        k = linear(W, p + "self_attn.k_proj", y, bias=False)
        v = linear(W, p + "self_attn.v_proj", y)
        q, k, v = (t.view(B, S, H, hd).transpose(1, 2) for t in (q, k, v))
        att = torch.softmax(q @ k.transpose(-1, -2) + mask, dim=-1) @ v
        att = att.transpose(1, 2).reshape(B, S, d)
        x = r + linear(W, p + "self_attn.out_proj", att)
        y = layer_norm(W, p + "final_layer_norm", x)
        x = x + linear(W, p + "fc2", F.gelu(linear(W, p + "fc1", y)))
        for k_, parts in spans.items():
            acts[f"audio.{k_}.layer.{j}"] = torch.cat([x[b, lo:hi] for b, lo, hi in parts])
    return x


def qwen2_audio_encoder(W, cfg, mels, valid, acts):
    a = cfg["audio"]
    x = torch.stack(mels)  # [B, n_mels, 3000]
    x = F.gelu(F.conv1d(x, W["audio_tower.conv1.weight"], W["audio_tower.conv1.bias"], padding=1))
    x = F.gelu(F.conv1d(x, W["audio_tower.conv2.weight"], W["audio_tower.conv2.bias"], stride=2, padding=1))
    x = x.transpose(1, 2) + W["audio_tower.embed_positions.weight"]  # [B, 1500, d]
    B, S, _ = x.shape
    lens = torch.tensor([(t - 1) // 2 + 1 for t in valid])
    pad = torch.arange(S)[None, :] >= lens[:, None]  # [B, S] keys to mask
    mask = torch.zeros(B, 1, S, S).masked_fill(pad[:, None, None, :], float("-inf"))
    spans = {k: [(k, 0, S)] for k in range(B)}
    for k in range(B):
        acts[f"audio.{k}.conv2"] = x[k]
    x = encoder_layers(W, "audio_tower.", a, x, mask, acts, spans)
    x = F.avg_pool1d(x.transpose(1, 2), 2, 2).transpose(1, 2)
    x = layer_norm(W, "audio_tower.layer_norm", x)
    x = linear(W, "multi_modal_projector.linear", x)
    outs = []
    for k, L in enumerate(lens.tolist()):
        n = max((L - 2) // 2 + 1, 0)  # Python floor division
        acts[f"audio.{k}.out"] = x[k, :n]
        outs.append(x[k, :n])
    return outs


def sinusoid_table(length, channels):
    half = channels // 2
    inv = torch.exp(-math.log(10000) / (half - 1) * torch.arange(half, dtype=torch.float64))
    ang = torch.arange(length, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=1)


def omni_encoder(W, cfg, mels, valid, acts):
    a, pre = cfg["audio"], cfg["prefix"] + "audio_tower."
    win = 2 * a["n_window"]
    chunks, owner = [], []
    for k, (mel, T) in enumerate(zip(mels, valid)):
        for piece in torch.split(mel[:, :T], win, dim=1):
            chunks.append(piece)
            owner.append(k)
    lens = torch.tensor([c.shape[1] for c in chunks])
    maxlen = int(lens.max())
    x = torch.stack([F.pad(c, (0, maxlen - c.shape[1])) for c in chunks])  # [C, n_mels, maxlen]
    fmask = (torch.arange(maxlen)[None, :] < lens[:, None]).to(x.dtype)[:, None, :]
    x = F.gelu(F.conv1d(x, W[pre + "conv1.weight"], W[pre + "conv1.bias"], padding=1)) * fmask
    x = F.gelu(F.conv1d(x, W[pre + "conv2.weight"], W[pre + "conv2.bias"], stride=2, padding=1))
    x = x.transpose(1, 2)
    x = x + sinusoid_table(x.shape[1], a["d_model"])[None]
    after = ((lens - 1) // 2 + 1).tolist()
    rows = torch.cat([x[c, :n] for c, n in enumerate(after)])[None]  # [1, R, d]
    R = rows.shape[1]
    mask = torch.full((R, R), float("-inf"))
    spans, start = {}, 0
    for c, n in enumerate(after):
        mask[start : start + n, start : start + n] = 0
        spans.setdefault(owner[c], []).append((0, start, start + n))
        start += n
    for k, parts in spans.items():
        acts[f"audio.{k}.conv2"] = torch.cat([rows[b, lo:hi] for b, lo, hi in parts])
    h = encoder_layers(W, pre, a, rows, mask[None, None], acts, spans)[0]
    outs = []
    for k, parts in spans.items():
        hk = torch.cat([h[lo:hi] for _, lo, hi in parts])
        hk = F.avg_pool1d(hk.T[None], 2, 2)[0].T
        hk = layer_norm(W, pre + "ln_post", hk)
        hk = linear(W, pre + "proj", hk)
        acts[f"audio.{k}.out"] = hk
        outs.append(hk)
    return outs


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def decoder(W, cfg, ids, audio_embeds, acts):
    t = cfg["text"]
    if cfg["family"] == "qwen2-audio":
        lm, head = "language_model.model.", "language_model.lm_head.weight"
    else:
        lm, head = cfg["prefix"] + "model.", cfg["prefix"] + "lm_head.weight"
    H, KV = t["num_attention_heads"], t["num_key_value_heads"]
    hd = t.get("head_dim") or t["hidden_size"] // H
    eps, theta = t["rms_norm_eps"], t["rope_theta"]
    n = ids.shape[0]

    h = W[lm + "embed_tokens.weight"][ids].clone()
    sel = ids == cfg["audio_token"]
    feats = torch.cat(audio_embeds) if audio_embeds else torch.zeros(0, h.shape[1])
    assert int(sel.sum()) == feats.shape[0], "placeholder count"
    h[sel] = feats
    acts["embeds"] = h

    pos = torch.arange(n, dtype=torch.float64)
    inv_freq = 1.0 / theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    ang = torch.outer(pos, inv_freq)
    emb = torch.cat([ang, ang], dim=-1)
    cos, sin = emb.cos(), emb.sin()
    causal = torch.full((n, n), float("-inf")).triu(1)

    def rms(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    for j in range(t["num_hidden_layers"]):
        p = f"{lm}layers.{j}."
        x = rms(h, W[p + "input_layernorm.weight"])
        q = linear(W, p + "self_attn.q_proj", x).view(n, H, hd).transpose(0, 1)
        k = linear(W, p + "self_attn.k_proj", x).view(n, KV, hd).transpose(0, 1)
        v = linear(W, p + "self_attn.v_proj", x).view(n, KV, hd).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=0)
        v = v.repeat_interleave(H // KV, dim=0)
        p_att = torch.softmax(q @ k.transpose(-1, -2) * hd ** -0.5 + causal, dim=-1)
        o = (p_att @ v).transpose(0, 1).reshape(n, H * hd)
        h = h + F.linear(o, W[p + "self_attn.o_proj.weight"])
        x = rms(h, W[p + "post_attention_layernorm.weight"])
        mlp = F.silu(F.linear(x, W[p + "mlp.gate_proj.weight"])) * F.linear(x, W[p + "mlp.up_proj.weight"])
        h = h + F.linear(mlp, W[p + "mlp.down_proj.weight"])
        acts[f"layer.{j}"] = h
    h = rms(h, W[lm + "norm.weight"])
    acts["norm"] = h
    lm_head = W[lm + "embed_tokens.weight"] if cfg["tied"] else W[head]
    return F.linear(h, lm_head)


def main():
    case = sys.argv[1]
    with open(os.path.join(case, "case.json")) as f:
        spec = json.load(f)
    cfg = read_config(spec["model_dir"])
    W = load_safetensors(spec["model_dir"])
    ids = torch.from_numpy(np.load(os.path.join(case, spec["ids"])).astype(np.int64))
    mels = [torch.from_numpy(np.load(os.path.join(case, a["mel"]))) for a in spec["audios"]]
    valid = [a["valid_frames"] for a in spec["audios"]]
    acts = {}
    embeds = []
    if mels:
        enc = qwen2_audio_encoder if cfg["family"] == "qwen2-audio" else omni_encoder
        embeds = enc(W, cfg, mels, valid, acts)
    acts["logits"] = decoder(W, cfg, ids, embeds, acts)
    out = os.path.join(case, "out")
    os.makedirs(out, exist_ok=True)
    for name, t in acts.items():
        np.save(os.path.join(out, name + ".npy"), np.ascontiguousarray(t.detach().numpy(), dtype=np.float64))


if __name__ == "__main__":
    main()
