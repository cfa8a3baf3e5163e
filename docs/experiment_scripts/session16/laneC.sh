#!/bin/bash
# positive control: what the encoder's finest scale lets a network learn with every label (100 %, Sup. Only, seed 0), 1° and 0.25°
source /work/main/docs/experiment_scripts/session16/common.sh
while pgrep -f laneV2.sh > /dev/null; do sleep 20; done
M=sup_grid
ex c100_r1_seed0 0 1
ex c100_r025_seed0 0 1 --no-baselines --set location_encoder.position.gridcell.min_radius=0.25
