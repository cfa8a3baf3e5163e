#!/bin/bash
# positive control (altitude band), val probes of the finest scale (pre-training at the same scale),
# seed 0, Sup. Only / MSE / CSP (multiply): the label varies within km, `places` stops at 1°
source /work/main/docs/experiment_scripts/session16/common.sh
M=sup_grid,mse,csp_multiply
for r in 0.25 0.1; do
  ex v_r${r/./}_seed0 0 0.01,0.05 --split val --set location_encoder.position.gridcell.min_radius=$r
done
