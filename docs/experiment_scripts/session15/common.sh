# Sourced by the lane scripts: a frozen worktree of the commit under test, the country data root.
cd /work/wt/exp15 && source .venv/bin/activate && export PYTHONPATH=/work/wt/exp15
D=/work/main/runs/places2/data; O=/work/main/runs/final6
G=sup_grid,mse,nce,csp,csp_multiply
# run OUT SEED RATIO [--set ...]: every gridcell method on test; the baselines with seed 0 only.
run() { out=$1; s=$2; r=$3; shift 3; b=""; [ "$s" = 0 ] || b="--no-baselines"
  echo "== $out ratio $r seed $s $(date +%T)"
  csp-tf experiment --data-root $D --preset places --methods ${M:-$G} --ratios $r --seeds $s $b --out $O/$out "$@" 2>&1 | grep "^\[\|experiment:\|Error"
  echo "== done $out ratio $r seed $s $(date +%T)"; }
