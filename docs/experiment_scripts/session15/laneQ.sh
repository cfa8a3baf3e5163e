#!/bin/bash
# countries with the place memory: 5 % (≥ 750 steps) then 10 % (`places`; CSP multiply ≥ 4000), each
# method's recipe as chosen on val in session 13; pre-training shared through c_seed$s
source /work/main/docs/experiment_scripts/session15/common.sh
for s in 0 1 2; do run c_seed$s $s 0.05 --set finetune.min_steps=750; done
for s in 0 1 2; do
  M=sup_grid,mse,nce,csp run c_seed$s $s 0.1
  M=csp_multiply run c4k_seed$s $s 0.1 --set finetune.min_steps=4000
done
