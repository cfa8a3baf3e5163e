#!/bin/bash
# val probes, Sup. Only (grid) at 20 %: a deeper location network (wrap's 4-block FCNet passed the kNN there)
cd /work/wt/exp14 && source .venv/bin/activate && export PYTHONPATH=/work/wt/exp14
D=/work/main/runs/places2/data; O=/work/main/runs/final5
run() { name=$1; shift; echo "== $name $(date +%T)"; csp-tf experiment --data-root $D --preset places --methods sup_grid --seeds 0 --split val --no-baselines --out $O/$name "$@" 2>&1 | grep -v "^\s*$" | tail -1; echo "== done $name $(date +%T)"; }
run v_r20_l3_8k --ratios 0.2 --set finetune.min_steps=8000 --set location_encoder.num_hidden_layer=3
run v_r20_l2_8k --ratios 0.2 --set finetune.min_steps=8000 --set location_encoder.num_hidden_layer=2
