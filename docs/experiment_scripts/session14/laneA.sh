#!/bin/bash
# val probes, Sup. Only (grid), seed 0: finer finest scale at 10 % and 20 %
cd /work/wt/exp14 && source .venv/bin/activate && export PYTHONPATH=/work/wt/exp14
D=/work/main/runs/places2/data; O=/work/main/runs/final5
run() { name=$1; shift; echo "== $name $(date +%T)"; csp-tf experiment --data-root $D --preset places --methods sup_grid --seeds 0 --split val --out $O/$name "$@" 2>&1 | grep -v "^\s*$" | tail -4; echo "== done $name $(date +%T)"; }
run v_r20_r05_8k --ratios 0.2 --set location_encoder.position.gridcell.min_radius=0.5 --set finetune.min_steps=8000
run v_r20_r1_8k --ratios 0.2 --set finetune.min_steps=8000
run v_r10_r05 --ratios 0.1 --set location_encoder.position.gridcell.min_radius=0.5
