#!/bin/bash
# positive control: the image probe with rounds-until-converged at 10 / 20 / 100 % (seed 0), against scikit-learn's LR
cd /work/main && source .venv/bin/activate
csp-tf experiment --data-root runs/alt/data --preset places --methods img_only --ratios 0.1,0.2,1 --seeds 0 --out runs/final7/probe_alt2 2>&1 | grep "^\[\|experiment:"
