#!/bin/bash
# country, 20 %: every gridcell method with Sup. Only's val pick (2 hidden layers, >= 8000 steps), test, seeds 0-2
cd /work/wt/exp14 && source .venv/bin/activate && export PYTHONPATH=/work/wt/exp14
D=/work/main/runs/places2/data; O=/work/main/runs/final5
for s in 0 1 2; do
  echo "== x seed $s $(date +%T)"
  csp-tf experiment --data-root $D --preset places --methods sup_grid,csp_multiply,mse,nce,csp --ratios 0.2 --seeds $s \
    --no-baselines --out $O/x_r20_l2_seed$s --set location_encoder.num_hidden_layer=2 --set finetune.min_steps=8000 2>&1 | grep "^\[\|experiment:"
done
echo "== x done $(date +%T)"
