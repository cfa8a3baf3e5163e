# Sourced by the lane scripts: a frozen worktree of the commit under test, the altitude-band data root.
cd /work/wt/exp16 && source .venv/bin/activate && export PYTHONPATH=/work/wt/exp16
D=/work/main/runs/alt/data; O=/work/main/runs/final7
M=${M:-img_only,sup_grid,mse,nce,csp,csp_multiply}
# ex OUT SEED RATIOS [--set ...]: every method on test; the baselines with seed 0 only.
ex() { out=$1; s=$2; r=$3; shift 3; b=""; [ "$s" = 0 ] || b="--no-baselines"
  echo "== $out ratios $r seed $s $(date +%T)"
  csp-tf experiment --data-root $D --preset places --methods $M --ratios $r --seeds $s $b --split test --out $O/$out "$@" 2>&1 | grep "^\[\|experiment:\|Error"
  echo "== done $out seed $s $(date +%T)"; }
