#!/bin/bash
# countries: the image probe with rounds-until-converged (commit after session 16's probe change), against scikit-learn's LR
cd /work/main && source .venv/bin/activate
csp-tf experiment --data-root runs/places2/data --preset places --methods img_only --ratios 0.05,0.1,0.2,1 --seeds 0 --out runs/final7/probe_countries 2>&1 | grep "^\[\|experiment:"
csp-tf experiment --data-root runs/alt/data --preset places --methods img_only --ratios 0.01,0.05 --seeds 0 --no-baselines --out runs/final7/probe_alt 2>&1 | grep "^\[\|experiment:"
