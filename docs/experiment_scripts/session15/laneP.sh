#!/bin/bash
# countries with the place memory: 1 % (finest scale 2°, ≥ 750 steps; wrap ≥ 3000 steps, lr 3e-3),
# then 20 % (≥ 8000 steps) reusing lane Q's pre-training (c_seed$s/pretrain, linked)
source /work/main/docs/experiment_scripts/session15/common.sh
for s in 0 1 2; do run c1_seed$s $s 0.01 --set location_encoder.position.gridcell.min_radius=2 --set finetune.min_steps=750; done
for s in 0 1 2; do M=sup_wrap run w1_seed$s $s 0.01 --set finetune.min_steps=3000 --set finetune.lr=3e-3; done
for s in 0 1; do
  mkdir -p $O/c20_seed$s && ln -sfn $O/c_seed$s/pretrain $O/c20_seed$s/pretrain
  run c20_seed$s $s 0.2 --set finetune.min_steps=8000
done
