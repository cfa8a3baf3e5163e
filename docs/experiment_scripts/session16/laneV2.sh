#!/bin/bash
# positive control: the `places` recipe (finest scale 1°) on val, seed 0, for the pick against laneV's 0.25° / 0.1°
source /work/main/docs/experiment_scripts/session16/common.sh
M=sup_grid,mse,csp_multiply
ex v_r1_seed0 0 0.01,0.05 --split val --no-baselines
