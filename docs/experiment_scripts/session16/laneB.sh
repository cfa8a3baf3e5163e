#!/bin/bash
# positive control (altitude band), `places` preset as is, 1 % and 5 %: seed 1
source /work/main/docs/experiment_scripts/session16/common.sh
ex a_seed1 1 0.01,0.05
