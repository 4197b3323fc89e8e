#!/bin/sh
# The whole earl pipeline on synthetic audio, on this machine: what
# `make demo` runs. It writes everything under $DEMO (default out/demo):
#
#   1. tools synth      audio questions: "A tone glides in pitch. Is it rising
#                       or falling?" (8 labelled seed clips, 400 for GRPO,
#                       200 held out)
#   2. launcher shard   decode, resample, Whisper log-mel, HDF5 shards
#   3. tools init-model a tiny Qwen2.5-Omni thinker with random weights
#   4. worker train     SFT warm start on the 8 seed clips (the answer format)
#   5. launcher run     GRPO on two ranks: AdamW ZeRO-1 over earl's TCP ring
#   6. worker eval      the start (SFT) and the final GRPO checkpoint on the
#                       held-out clips, greedy
#   7. launcher report  the accuracy table side by side, and curve.png
#
# DEMO_SHORT=1 runs a shortened version (160 GRPO clips, 64 held out, 80
# steps; make test, where it must still gain 10 points: about 30 s).
# DEMO_MIN_GAIN=N fails unless GRPO raised held-out accuracy by N points.
set -eu

D=${DEMO:-out/demo}
B=${BIN:-bin}
SHORT=${DEMO_SHORT:-0}
MIN_GAIN=${DEMO_MIN_GAIN:-}

n_seed=8 n_train=400 n_eval=200 sft_steps=120 grpo_steps=200 save=50
if [ "$SHORT" = 1 ]; then
	n_train=160 n_eval=64 sft_steps=100 grpo_steps=80 save=40
fi

start=$(date +%s)
step() { printf '\n== [%ss] %s\n' "$(($(date +%s) - start))" "$*"; }
ckpt() { printf '%s/checkpoints/step-%08d' "$1" "$2"; }

rm -rf "$D"
mkdir -p "$D"

step "1/7 synthesise audio questions (tools synth): $n_seed labelled seed clips, $n_train for GRPO, $n_eval held out"
"$B/tools" synth --task sweep --format jsonl -n "$n_seed" --seed 3 --out "$D/src/seed" --duration 1:1.5
"$B/tools" synth --task sweep --format jsonl -n "$n_train" --seed 1 --out "$D/src/train" --duration 1:1.5
"$B/tools" synth --task sweep --format jsonl -n "$n_eval" --seed 2 --out "$D/src/eval" --duration 1:1.5

step "2/7 shard them (launcher shard: decode, resample to 16 kHz, Whisper log-mel, HDF5)"
for s in seed train eval; do
	"$B/launcher" shard --in jsonl --src "$D/src/$s/synth.jsonl" --out "$D/shards/$s" --family qwen2.5-omni
done

step "3/7 a tiny Qwen2.5-Omni thinker with random weights (tools init-model)"
"$B/tools" init-model --family qwen2.5-omni --preset tiny --seed 1 --dtype f32 --audio-conv-std 0.2 --out "$D/model"

step "4/7 SFT warm start on the $n_seed seed clips (worker train, mode sft)"
"$B/worker" train --config configs/demo_sft.toml --set run_dir="$D/sft" --set model.path="$D/model" \
	--set data.train="$D/shards/seed" --set train.max_steps="$sft_steps"
"$B/launcher" export --ckpt "$(ckpt "$D/sft" "$sft_steps")" --out "$D/sft-model" --dtype f32

grpo_set="--set run_dir=$D/grpo --set model.path=$D/sft-model --set data.train=$D/shards/train --set eval.shards=$D/shards/eval"
step "5/7 GRPO on two ranks (launcher run --nproc 2 -- worker train, mode grpo)"
# shellcheck disable=SC2086
"$B/launcher" run --nproc 2 -- "$B/worker" train --config configs/demo_grpo.toml $grpo_set \
	--set train.max_steps="$grpo_steps" --set train.save_steps="$save"

step "6/7 evaluate the start (the SFT model) and the final GRPO checkpoint on the $n_eval held-out clips"
# shellcheck disable=SC2086
"$B/launcher" run --nproc 2 -- "$B/worker" eval --config configs/demo_grpo.toml $grpo_set \
	--set eval.out="$D/eval/start.jsonl" >/dev/null
# shellcheck disable=SC2086
"$B/launcher" run --nproc 2 -- "$B/worker" eval --config configs/demo_grpo.toml $grpo_set \
	--set eval.checkpoint="$(ckpt "$D/grpo" "$grpo_steps")" --set eval.out="$D/eval/final.jsonl" >/dev/null

step "7/7 report (launcher report)"
"$B/launcher" report --metrics "$D/grpo/metrics.jsonl" --png "$D/curve.png" \
	"start@0=$D/eval/start.json" "final@$grpo_steps=$D/eval/final.json" | tee "$D/report.txt"

# The overall accuracies, from the tables' JSON.
acc() { python3 -c 'import json, sys; o = json.load(open(sys.argv[1]))["overall"]; print("%.1f" % (100.0 * o["correct"] / o["total"]))' "$1"; }
a0=$(acc "$D/eval/start.json")
a1=$(acc "$D/eval/final.json")
gain=$(awk -v a="$a0" -v b="$a1" 'BEGIN { printf "%.1f", b - a }')
printf '\nheld-out accuracy: start (SFT) %s%%, after GRPO %s%%: %s points, in %ss; curve: %s\n' \
	"$a0" "$a1" "$gain" "$(($(date +%s) - start))" "$D/curve.png"
if [ -n "$MIN_GAIN" ]; then
	awk -v g="$gain" -v m="$MIN_GAIN" 'BEGIN { exit !(g >= m) }' || {
		echo "demo: GRPO raised held-out accuracy by $gain points, less than the $MIN_GAIN expected" >&2
		exit 1
	}
fi
