"""``csp-tf pipeline run`` (local, LocalDagRunner) and ``csp-tf pipeline compile --kubeflow``.

``add_pipeline_parser(subparsers)`` is called by ``csp_cli`` (the console script); nothing
here imports TFX until a command runs, so ``csp-tf --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys

from csp_tf.cli import add_config_args, load_config
from csp_tf.preemption import PREEMPTED_EXIT_CODE

RUN_EPILOG = """\
examples:
  csp-tf generate --out runs/world --ingest
  csp-tf pipeline run --data-root runs/world/data --pipeline-root runs/tfx \\
      --serving-dir runs/serving --preset demo
  csp-tf pipeline run ... --set pretrain.epochs=2 --min-top1 0.3 \\
      --beam-arg=--direct_running_mode=in_memory --beam-arg=--direct_num_workers=1

Beam options take the form --beam-arg=--name=value (repeat it). Outputs: the pipeline root
(artifacts), an MLMD SQLite file (default <pipeline-root>/metadata.sqlite) and, if the model is
blessed, <serving-dir>/<version>/ for TF Serving. A re-run reuses unchanged components (cache).
"""

COMPILE_EPILOG = """\
example:
  csp-tf pipeline compile --kubeflow --image gcr.io/P/csp-tf:1 \\
      --pipeline-root gs://B/tfx --data-root gs://B/data --serving-dir gs://B/serving \\
      --preset demo --set runtime.distribution=mirrored \\
      --beam-arg=--runner=DataflowRunner --beam-arg=--project=P \\
      --beam-arg=--region=us-central1 --beam-arg=--temp_location=gs://B/tmp
Build the image first: docker build -t gcr.io/P/csp-tf:1 . && docker push gcr.io/P/csp-tf:1
"""


def add_pipeline_parser(subparsers) -> argparse.ArgumentParser:
    """Registers ``pipeline`` with the actions ``run`` and ``compile``."""
    p = subparsers.add_parser(
        "pipeline", help="TFX pipeline: ingest → validate → pre-train → fine-tune → evaluate → push",
        description="The csp-tf TFX pipeline (docs/pipeline.md): run it locally or compile it "
                    "for Kubeflow Pipelines v2 / Vertex AI.")
    actions = p.add_subparsers(dest="pipeline_action", metavar="ACTION")
    actions.required = True

    run = actions.add_parser("run", help="run the pipeline locally (LocalDagRunner, SQLite MLMD)",
                             epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common_args(run)
    run.add_argument("--metadata-path", help="MLMD SQLite file (default <pipeline-root>/metadata.sqlite)")
    run.add_argument("--no-cache", action="store_true", help="re-run every component")
    run.add_argument("--json", metavar="FILE", help="also write the run summary as JSON")
    run.add_argument("--no-report", action="store_true", help="do not print the metrics report")
    run.set_defaults(func=cmd_run)

    comp = actions.add_parser("compile", help="compile a KFP v2 pipeline spec (--kubeflow)",
                              epilog=COMPILE_EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    comp.add_argument("--kubeflow", action="store_true",
                      help="target Kubeflow Pipelines v2 / Vertex AI (the only target)")
    _common_args(comp)
    comp.add_argument("--image", default=None,
                      help="container image of every component, built from ./Dockerfile "
                           "(default csp-tf:latest)")
    comp.add_argument("--output", default=None, metavar="FILE",
                      help="pipeline spec JSON to write (default csp_tf_pipeline.json)")
    comp.add_argument("--schema-dir", default=None,
                      help="where to write the pinned schema (default <pipeline-root>/_schema)")
    comp.set_defaults(func=cmd_compile)
    return p


def _common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", required=True, help="a data root written by `csp-tf ingest`")
    p.add_argument("--pipeline-root", required=True, help="where TFX writes artifacts")
    p.add_argument("--serving-dir", required=True,
                   help="Pusher destination: blessed models land in <serving-dir>/<version>/")
    p.add_argument("--beam-arg", dest="beam_args", action="append", default=None,
                   metavar="--NAME=VALUE", help="a Beam option, as --beam-arg=--name=value (repeat)")
    p.add_argument("--min-top1", type=float, default=None,
                   help="bless only if fused top-1 on val is at least this fraction (default 0.25)")
    p.add_argument("--top1-change-tolerance", type=float, default=None,
                   help="bless only if top-1 is at most this much below the last blessed model's "
                        "(fraction, default 0.01)")
    p.add_argument("--knn-tolerance", type=float, default=None,
                   help="bless only if fused top-1 on val is at most this much below a kNN's on "
                        "the same rows, fitted on the same training labels (fraction, default 0)")
    p.add_argument("--pipeline-name", default=None, help="TFX pipeline name (default csp-tf)")
    add_config_args(p)


def _options(args) -> dict:
    """The optional flags given; the runners' defaults (``tfx_pipeline.configs``) fill the rest."""
    given = {"pipeline_name": args.pipeline_name or None, "min_top1": args.min_top1,
             "top1_change_tolerance": args.top1_change_tolerance,
             "knn_tolerance": args.knn_tolerance}
    return {k: v for k, v in given.items() if v is not None}


def cmd_run(args) -> int:
    """``csp-tf pipeline run``."""
    from tfx_pipeline.local_runner import PipelineRunError, run_local
    from tfx_pipeline.report import format_report

    try:
        summary = run_local(args.pipeline_root, args.data_root, args.serving_dir, load_config(args),
                            metadata_path=args.metadata_path, beam_args=args.beam_args,
                            enable_cache=not args.no_cache, **_options(args))
    except PipelineRunError as exc:
        stop = _preempted(exc)
        if stop is not None:  # a Trainer saved its checkpoint on SIGTERM: re-run to resume
            print(f"csp-tf pipeline run: preempted: {stop}", file=sys.stderr)
            return PREEMPTED_EXIT_CODE
        return _fail("pipeline run", exc)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2, default=str)
    if not args.no_report:
        print(format_report(summary))
    print(json.dumps({k: summary.get(k) for k in (
        "run_id", "blessed", "pushed", "pushed_dir", "pipeline_root", "metadata_path")}, indent=2))
    return 0


def cmd_compile(args) -> int:
    """``csp-tf pipeline compile --kubeflow``."""
    from tfx_pipeline import configs

    if not args.kubeflow:
        return _fail("pipeline compile", "pass --kubeflow (the only compile target)")
    from tfx_pipeline.kubeflow_runner import compile_kubeflow

    path = compile_kubeflow(args.pipeline_root, args.data_root, args.serving_dir, load_config(args),
                            args.output or configs.KUBEFLOW_OUTPUT,
                            image=args.image or configs.DEFAULT_IMAGE, beam_args=args.beam_args,
                            schema_dir=args.schema_dir, **_options(args))
    print(path)
    return 0


def _preempted(exc: BaseException):
    """The ``csp_tf.preemption.Preempted`` that ``exc`` was raised from, if any."""
    from csp_tf.preemption import Preempted

    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, Preempted):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _fail(command: str, error) -> int:
    print(f"csp-tf {command}: error: {error}", file=sys.stderr)
    return 2
