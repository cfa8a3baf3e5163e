#!/bin/bash
# positive control, `places` recipe, 10 % and 20 % (seeds 0-2), reusing lane A's pre-training (a_seed$s/pretrain, linked)
source /work/main/docs/experiment_scripts/session16/common.sh
while pgrep -f laneA.sh > /dev/null; do sleep 20; done
for s in 0 1 2; do
  mkdir -p $O/a20_seed$s && ln -sfn $O/a_seed$s/pretrain $O/a20_seed$s/pretrain
  ex a20_seed$s $s 0.1,0.2
done
