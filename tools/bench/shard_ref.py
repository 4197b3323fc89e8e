#!/usr/bin/env python3
"""Reference for `launcher shard` throughput in `make bench`.

The pipeline a researcher would script in Python for the same job, on the
same clips that `tools bench shard` generated: read each WAV (scipy.io.wavfile),
average the channels, resample to 16 kHz (scipy.signal.resample_poly, a
polyphase Kaiser filter), compute the Whisper log-mel with torch.stft
exactly as transformers' WhisperFeatureExtractor does, and write one
shuffled + gzip-1 HDF5 dataset per clip with h5py. Features are computed in
a multiprocessing pool with one worker per core (torch limited to one thread
each) and written by the parent, as earl does. Prints both figures and
their ratio. Needs Debian's python3-numpy, python3-scipy, python3-torch and
python3-h5py.
"""
import json
import multiprocessing as mp
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from logmel_ref import slaney_filters  # noqa: E402

N_SAMPLES = 480000
_state = {}


def _init():
    import torch
    torch.set_num_threads(1)
    _state["torch"] = torch
    _state["window"] = torch.hann_window(400)
    _state["filters"] = torch.from_numpy(slaney_filters()).type(torch.float32)


def features(path):
    from scipy.io import wavfile
    from scipy.signal import resample_poly
    torch = _state["torch"]
    rate, pcm = wavfile.read(path)
    assert pcm.dtype == np.int16, "the benchmark clips are PCM16"
    x = pcm.reshape(len(pcm), -1).astype(np.float32).mean(axis=1) / 32768.0
    if rate != 16000:
        g = np.gcd(rate, 16000)
        x = resample_poly(x, 16000 // g, rate // g).astype(np.float32)
    wav = torch.zeros(N_SAMPLES, dtype=torch.float32)
    m = min(len(x), N_SAMPLES)
    wav[:m] = torch.from_numpy(x[:m])
    stft = torch.stft(wav, 400, 160, window=_state["window"], return_complex=True)
    mel = _state["filters"].T @ (stft[..., :-1].abs() ** 2)
    log = torch.clamp(mel, min=1e-10).log10()
    log = torch.maximum(log, log.max() - 8.0)
    return ((log + 4.0) / 4.0).numpy().T.copy()  # [frames, mels]


def main():
    import h5py
    d = sys.argv[1]
    earl = json.load(open(d + "/earl.json"))
    src = d + "/clips"
    clips = sorted(os.path.join(src, "audio", f) for f in os.listdir(src + "/audio"))
    workers = earl["workers"]
    out = d + "/ref.h5"
    best = float("inf")
    for _ in range(2):
        t = time.perf_counter()
        with mp.Pool(workers, initializer=_init) as pool, h5py.File(out, "w") as f:
            g = f.create_group("features")
            for i, feat in enumerate(pool.imap(features, clips, chunksize=4)):
                g.create_dataset("%08d" % i, data=feat, chunks=feat.shape, shuffle=True, compression="gzip",
                                 compression_opts=1)
        best = min(best, time.perf_counter() - t)
    ref = len(clips) / best
    print("%-58s %10s %10s" % ("pipeline (same clips, %d workers)" % workers, "clips/s", "vs ref"))
    print("%-58s %10.1f %9.2fx" % ("earl launcher shard (Go)", earl["clips_per_s"], earl["clips_per_s"] / ref))
    print("%-58s %10.1f %9.2fx" % ("python: scipy wavfile+resample_poly, torch.stft, h5py gzip-1", ref, 1.0))
    os.remove(out)


if __name__ == "__main__":
    main()
