#!/bin/bash
# positive control (altitude band), `places` preset as is, 1 % and 5 %: seed 0 (with the baselines), then seed 2
source /work/main/docs/experiment_scripts/session16/common.sh
ex a_seed0 0 0.01,0.05
ex a_seed2 2 0.01,0.05
