#!/usr/bin/env python3
"""Reference log-mel timings for `make bench`, side by side with earl.

Reads DIR/input.npy (clips of 16 kHz float32 audio written by
`tools bench mel`), computes the Whisper log-mel the way transformers'
WhisperFeatureExtractor does (torch path: torch.stft; numpy path: a
vectorised float64 rfft), times both, and compares them with earl's output
DIR/earl.npy. Written for earl from the published algorithm; needs only
Debian's python3-numpy and python3-torch.
"""
import json
import sys
import time

import numpy as np


def hz_to_mel(f):
    f = np.asanyarray(f, dtype=np.float64)
    lin = 3.0 * f / 200.0
    log = 15.0 + np.log(np.maximum(f, 1e-300) / 1000.0) * (27.0 / np.log(6.4))
    return np.where(f >= 1000.0, log, lin)


def mel_to_hz(m):
    m = np.asanyarray(m, dtype=np.float64)
    lin = 200.0 * m / 3.0
    log = 1000.0 * np.exp(np.log(6.4) / 27.0 * (m - 15.0))
    return np.where(m >= 15.0, log, lin)


def slaney_filters(n_fft=400, n_mels=128, sr=16000):
    """[bins, n_mels], as transformers' mel_filter_bank(norm/mel_scale='slaney')."""
    bins = n_fft // 2 + 1
    fft_freqs = np.linspace(0, sr // 2, bins)
    pts = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2))
    diff = np.diff(pts)
    slopes = pts[None, :] - fft_freqs[:, None]
    down = -slopes[:, :-2] / diff[:-1]
    up = slopes[:, 2:] / diff[1:]
    fb = np.maximum(0.0, np.minimum(down, up))
    return fb * (2.0 / (pts[2:n_mels + 2] - pts[:n_mels]))[None, :]


def numpy_logmel(x, n_samples, filters, n_fft=400, hop=160):
    y = np.zeros(n_samples, dtype=np.float64)
    m = min(len(x), n_samples)
    y[:m] = x[:m]
    y = np.pad(y, n_fft // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::hop]
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    spec = np.abs(np.fft.rfft(frames * win, axis=1)) ** 2  # [frames, bins]
    mel = (spec @ filters).T[:, :-1]
    log = np.log10(np.maximum(mel, 1e-10))
    log = np.maximum(log, log.max() - 8.0)
    return ((log + 4.0) / 4.0).astype(np.float32)


def torch_logmel(torch, x, n_samples, filters_t, window, n_fft=400, hop=160):
    w = torch.zeros(n_samples, dtype=torch.float32)
    m = min(len(x), n_samples)
    w[:m] = torch.from_numpy(x[:m])
    stft = torch.stft(w, n_fft, hop, window=window, return_complex=True)
    mag = stft[..., :-1].abs() ** 2
    mel = filters_t.T @ mag
    log = torch.clamp(mel, min=1e-10).log10()
    log = torch.maximum(log, log.max() - 8.0)
    return (log + 4.0) / 4.0


def best_of(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main():
    d = sys.argv[1]
    meta = json.load(open(d + "/earl.json"))
    x = np.load(d + "/input.npy")
    earl = np.load(d + "/earl.npy")
    n_samples, clips = meta["n_samples"], x.shape[0]
    filters = slaney_filters()
    rows = [("earl (Go), 1 thread", meta["earl_1thread_s"], None),
            ("earl (Go), %d threads" % meta["threads"], meta["earl_all_s"], None)]

    t, out = best_of(lambda: np.stack([numpy_logmel(c, n_samples, filters) for c in x]), 2)
    rows.append(("numpy float64 (vectorised rfft)", t, np.abs(out - earl).max()))

    import torch
    window = torch.hann_window(400)
    ft = torch.from_numpy(filters).type(torch.float32)
    for threads in (1, meta["threads"]):
        torch.set_num_threads(threads)
        t, out = best_of(lambda: np.stack([torch_logmel(torch, c, n_samples, ft, window).numpy() for c in x]), 2)
        rows.append(("torch %s float32 (transformers path), %d thread%s" % (torch.__version__, threads, "s" if threads > 1 else ""),
                     t, np.abs(out - earl).max()))

    base = meta["earl_1thread_s"]
    print("log-mel of %d clips of %gs (%s, padded to %d samples)" % (clips, meta["seconds"], meta["family"], n_samples))
    print("%-52s %10s %12s %18s" % ("implementation", "ms/clip", "time/earl 1t", "max |x - earl|"))
    for name, t, diff in rows:
        print("%-52s %10.2f %11.2fx %18s" % (name, 1e3 * t / clips, t / base, "-" if diff is None else "%.2e" % diff))


if __name__ == "__main__":
    main()
