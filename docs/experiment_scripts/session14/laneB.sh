#!/bin/bash
# val probes, Sup. Only (wrap) at 1 %, seed 0 (pick: fcnet_dropout 0, lr 3e-3, >= 3000 steps: 90.72; kNN 90.71)
cd /work/wt/exp14 && source .venv/bin/activate && export PYTHONPATH=/work/wt/exp14
D=/work/main/runs/places2/data; O=/work/main/runs/final5
W="--set location_encoder.fcnet_dropout=0.0 --set finetune.lr=0.003 --set finetune.min_steps=3000"
run() { name=$1; shift; echo "== $name $(date +%T)"; csp-tf experiment --data-root $D --preset places --methods sup_wrap --seeds 0 --split val --ratios 0.01 --out $O/$name $W "$@" 2>&1 | grep -v "^\s*$" | tail -4; echo "== done $name $(date +%T)"; }
run v_w1_pick
run v_w1_bs64 --set finetune.batch_size=64
run v_w1_bs1024 --set finetune.batch_size=1024
