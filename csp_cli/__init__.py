"""The ``csp-tf`` console script: one parser assembled from the commands of each package.

The library (``csp_tf``) imports neither ``tfx_pipeline`` nor ``serving``; this package is the
one place that puts the three behind one command (docs/architecture.md). Every command runs
inside :func:`csp_tf.logs.command_output`: our lines on the terminal, the rest in a log file.
Importing this module imports no TensorFlow, TFX or gRPC, so ``csp-tf --help`` is instant.
"""

from __future__ import annotations

import argparse
from typing import List, Optional

from csp_tf import logs
from csp_tf.cli import add_stage_parsers, run_command
from csp_tf.data.cli import add_generate_parser, add_ingest_parser
from csp_tf.datasets.cli import add_dataset_parser
from csp_tf.experiments.ablation import add_ablation_parser
from csp_tf.pretrained_geoclip import add_geoclip_parser
from csp_tf.experiments.embedding_suite import add_embedding_benchmark_parser
from csp_tf.experiments.cli import (add_compare_parser, add_experiment_parser,
                                    add_report_parser, add_tune_parser)
from csp_tf.experiments.map_cli import add_map_parser
from serving.cli import add_query_parser, add_serve_parser
from tfx_pipeline.cli import add_pipeline_parser

REGISTRARS = (add_stage_parsers, add_generate_parser, add_ingest_parser, add_dataset_parser,
              add_experiment_parser, add_map_parser, add_tune_parser, add_report_parser,
              add_compare_parser, add_ablation_parser, add_pipeline_parser, add_query_parser,
              add_serve_parser, add_geoclip_parser, add_embedding_benchmark_parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="csp-tf", description="CSP location-encoder pre-training, fine-tuning, evaluation, "
        "export, TFX pipelines and serving. Start with `csp-tf generate --help`.")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show every log line (TensorFlow, Beam, TFX, debug) on the terminal")
    parser.add_argument("--log-file", default=None, metavar="FILE",
                        help="where the detail goes (default: a new file under $CSP_TF_LOG_DIR "
                             "or <tmp>/csp-tf-logs; its path is printed)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in REGISTRARS:
        register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    with logs.for_args(args):
        return run_command(args)
