#!/bin/bash
# val probes, Sup. Only (grid) at 20 %: more steps (wrap went 97.72 -> 98.05 with 8k -> 32k)
while pgrep -f laneA.sh >/dev/null; do sleep 10; done
cd /work/wt/exp14 && source .venv/bin/activate && export PYTHONPATH=/work/wt/exp14
D=/work/main/runs/places2/data; O=/work/main/runs/final5
run() { name=$1; shift; echo "== $name $(date +%T)"; csp-tf experiment --data-root $D --preset places --methods sup_grid --seeds 0 --split val --no-baselines --out $O/$name "$@" 2>&1 | grep -v "^\s*$" | tail -2; echo "== done $name $(date +%T)"; }
run v_r20_r1_16k --ratios 0.2 --set finetune.min_steps=16000
run v_r20_r1_32k --ratios 0.2 --set finetune.min_steps=32000
