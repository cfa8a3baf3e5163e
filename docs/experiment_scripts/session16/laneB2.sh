#!/bin/bash
# positive control, 1 % at finest scale 0.25° (pre-training too): Sup. Only's val pick at 1 % (56.66 against 56.62 at 1°), seeds 0-2
source /work/main/docs/experiment_scripts/session16/common.sh
M=sup_grid,mse,nce,csp,csp_multiply
for s in 0 1 2; do ex b_r025_seed$s $s 0.01 --set location_encoder.position.gridcell.min_radius=0.25; done
