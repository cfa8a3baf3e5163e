#!/bin/bash
# after lane Q: 20 % (≥ 8000 steps) seed 2, reusing c_seed2's pre-training
source /work/main/docs/experiment_scripts/session15/common.sh
while pgrep -f laneQ.sh > /dev/null; do sleep 30; done
s=2; mkdir -p $O/c20_seed$s && ln -sfn $O/c_seed$s/pretrain $O/c20_seed$s/pretrain
run c20_seed$s $s 0.2 --set finetune.min_steps=8000
