#!/bin/bash
# control set, 20 %: finer scale with more steps (the label lives on the 5' turbidity cell, ~9 km)
cd /work/wt/exp14 && source .venv/bin/activate && export PYTHONPATH=/work/wt/exp14
D=/work/main/runs/haze/data; O=/work/main/runs/final5
run() { name=$1; shift; echo "== $name $(date +%T)"; csp-tf experiment --data-root $D --preset places --methods sup_grid --seeds 0 --split val --no-baselines --out $O/$name "$@" 2>&1 | grep -v "^\s*$" | tail -1; echo "== done $name $(date +%T)"; }
run hv_r025_8k --ratios 0.2 --set location_encoder.position.gridcell.min_radius=0.25 --set finetune.min_steps=8000
run hv_r01_8k --ratios 0.2 --set location_encoder.position.gridcell.min_radius=0.1 --set finetune.min_steps=8000
