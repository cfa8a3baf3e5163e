"""Command-line entry points for serving: ``query`` (gRPC client) and ``serve-dev``.

The console script (``csp_cli``) registers both on its sub-parsers::

    add_query_parser(subparsers)   # csp-tf query {prior,embed,classify,labels,metadata,status}
    add_serve_parser(subparsers)   # csp-tf serve-dev --model-base-path DIR ...
    args = parser.parse_args(); sys.exit(args.func(args))

Each leaf sets ``func``: a callable taking the parsed ``argparse.Namespace`` and returning the
exit code (0 ok, 1 serving error, 2 bad input). Importing this module does not import
TensorFlow or gRPC; the handlers do, when they run. ``python -m serving ...`` runs the same
commands without the csp-tf CLI. Logs go where :mod:`csp_tf.logs` sends every command's; a
query's stdout and stderr stay JSON only (it does not print the log file's path).
"""

from __future__ import annotations

import argparse
import json
import sys

from csp_tf.logs import for_args
from serving import contract

_EXIT_OK, _EXIT_SERVING, _EXIT_INPUT = 0, 1, 2


def _connection_flags() -> argparse.ArgumentParser:
    flags = argparse.ArgumentParser(add_help=False)
    flags.add_argument("--address", default=f"localhost:{contract.GRPC_PORT}",
                       help="gRPC host:port of TF Serving or the dev server (default %(default)s)")
    flags.add_argument("--model", default=contract.MODEL_NAME,
                       help="model name (default %(default)s)")
    pin = flags.add_mutually_exclusive_group()
    pin.add_argument("--version", type=int, help="version number (default: latest)")
    pin.add_argument("--version-label", help="version label, e.g. stable or canary")
    flags.add_argument("--timeout", type=float, default=10.0,
                       help="deadline per RPC in seconds (default %(default)s)")
    flags.add_argument("--retries", type=int, default=3,
                       help="retries on UNAVAILABLE (default %(default)s)")
    return flags


def _point_flags(with_features: bool) -> argparse.ArgumentParser:
    flags = argparse.ArgumentParser(add_help=False)
    columns = "lon,lat,feature..." if with_features else "lon,lat"
    flags.add_argument("--csv", help=f"CSV with header {columns}; one query per row")
    flags.add_argument("--lon", type=float, help="longitude in degrees (single query)")
    flags.add_argument("--lat", type=float, help="latitude in degrees (single query)")
    if with_features:
        flags.add_argument("--features", help="comma-separated image features (single query)")
    flags.add_argument("--batch-size", type=int, default=64,
                       help="rows per request with --csv (default %(default)s)")
    return flags


def add_query_parser(subparsers) -> argparse.ArgumentParser:
    """Registers ``query`` with sub-commands prior, embed, classify, labels, metadata, status.

    Results are JSON on stdout; errors are one JSON object ``{"error": ...}`` on stderr.
    """
    query = subparsers.add_parser(
        "query", help="query the csp model on TF Serving (or serve-dev) over gRPC",
        description="Query the csp model over gRPC; prints JSON.")
    commands = query.add_subparsers(dest="query_command", required=True)
    connection = _connection_flags()
    for name, what, features in (
            ("prior", f"Predict {contract.LOCATION_PRIOR}", False),
            ("embed", f"Predict {contract.LOCATION_EMBEDDING}", False),
            ("classify", f"Predict {contract.PREDICT_FEATURES} (probabilities, top-k indices)",
             True),
            ("labels", f"Classify RPC on the {contract.CLASSIFY!r} signature (top-k label "
                       "names and scores)", True)):
        command = commands.add_parser(name, parents=[connection, _point_flags(features)],
                                      help=f"{what} for --lon/--lat or --csv rows")
        command.set_defaults(func=_run_points, kind=name)
    commands.add_parser("metadata", parents=[connection],
                        help="signatures of the served version").set_defaults(func=_run_metadata)
    commands.add_parser("status", parents=[connection],
                        help="version states (GetModelStatus)").set_defaults(func=_run_status)
    query.set_defaults(announce_log=False)
    return query


def add_serve_parser(subparsers) -> argparse.ArgumentParser:
    """Registers ``serve-dev``: the DEVELOPMENT PredictionService (not TF Serving)."""
    serve = subparsers.add_parser(
        "serve-dev", help="run the DEVELOPMENT gRPC server (not TF Serving) on a model base path",
        description="DEVELOPMENT server speaking TF Serving's gRPC PredictionService and "
                    "ModelService. Production uses tensorflow/serving:2.16.1 (docs/serving.md).")
    serve.add_argument("--model-base-path", required=True,
                       help="directory of integer-named SavedModel version directories")
    serve.add_argument("--model-name", default=contract.MODEL_NAME)
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default %(default)s)")
    serve.add_argument("--port", type=int, default=contract.GRPC_PORT,
                       help="gRPC port, 0 for a free one (default %(default)s)")
    serve.add_argument("--poll-interval", type=float, default=2.0,
                       help="seconds between scans for new versions (default %(default)s)")
    serve.add_argument("--max-batch-size", type=int, default=128,
                       help="largest Predict batch, 0 for no limit (default %(default)s)")
    serve.add_argument("--num-versions", type=int, default=1,
                       help="newest versions kept loaded (default %(default)s)")
    serve.add_argument("--version-label", action="append", default=[], metavar="LABEL=VERSION",
                       help="version label, repeatable (e.g. stable=1 canary=2)")
    serve.add_argument("--max-workers", type=int, default=32,
                       help="RPC worker threads (default %(default)s)")
    serve.add_argument("--max-concurrent-rpcs", type=int, default=0,
                       help="RPCs admitted at once, running or queued; beyond it "
                            "RESOURCE_EXHAUSTED at once (default 0: twice --max-workers)")
    serve.add_argument("--max-request-bytes", type=int, default=contract.DEV_MAX_REQUEST_BYTES,
                       help="larger requests are INVALID_ARGUMENT naming the limit, 0 for no "
                            "limit (default %(default)s)")
    serve.add_argument("--no-warmup", action="store_true",
                       help="do not replay assets.extra/tf_serving_warmup_requests")
    serve.set_defaults(func=_run_serve)
    return serve


# Handlers ----------------------------------------------------------------------------------
def _fail(message: str, code: int) -> int:
    print(json.dumps({"error": message}), file=sys.stderr)
    return code


def _with_client(args: argparse.Namespace, work) -> int:
    from serving.client import CSPServingClient, ServingError

    try:
        with CSPServingClient(args.address, args.model, version=args.version,
                              version_label=args.version_label, timeout_s=args.timeout,
                              retries=args.retries) as client:
            print(json.dumps(work(client), indent=1))
    except ServingError as exc:
        return _fail(str(exc), _EXIT_INPUT if exc.client_side else _EXIT_SERVING)
    except (OSError, ValueError) as exc:
        return _fail(str(exc), _EXIT_INPUT)
    return _EXIT_OK


def _run_points(args: argparse.Namespace) -> int:
    import numpy as np

    from serving import batch_query

    single = args.lon is not None or args.lat is not None
    if bool(args.csv) == single:
        return _fail("give either --csv or both --lon and --lat", _EXIT_INPUT)
    if single and (args.lon is None or args.lat is None):
        return _fail("--lon and --lat go together", _EXIT_INPUT)

    def work(client) -> dict:
        if args.csv:
            rows = batch_query.read_query_csv(args.csv)
            coords, feats = rows.lon_lat, rows.image_features
        else:
            coords = np.array([[args.lon, args.lat]], np.float32)
            text = getattr(args, "features", None)
            feats = (np.array([[float(v) for v in text.split(",")]], np.float32) if text
                     else np.zeros((1, 0), np.float32))
        results = batch_query.run_query(client, args.kind, coords, feats, args.batch_size)
        return {"address": args.address, "model": args.model, "version": client.last_version,
                "query": args.kind, "results": results}

    return _with_client(args, work)


def _run_metadata(args: argparse.Namespace) -> int:
    return _with_client(args, lambda client: client.metadata())


def _run_status(args: argparse.Namespace) -> int:
    return _with_client(args, lambda client: {"model": args.model,
                                              "model_version_status": client.status()})


def _parse_labels(pairs: list[str]) -> dict[str, int]:
    labels = {}
    for pair in pairs:
        label, _, version = pair.partition("=")
        if not label or not version.isdigit():
            raise ValueError(f"--version-label wants LABEL=VERSION, got {pair!r}")
        labels[label] = int(version)
    return labels


def _run_serve(args: argparse.Namespace) -> int:
    try:
        labels = _parse_labels(args.version_label)
    except ValueError as exc:
        return _fail(str(exc), _EXIT_INPUT)
    from serving.dev_server import DevServer

    server = DevServer(args.model_base_path, args.model_name, port=args.port, host=args.host,
                       poll_interval_s=args.poll_interval,
                       max_batch_size=args.max_batch_size or None,
                       num_versions=args.num_versions, version_labels=labels,
                       max_workers=args.max_workers, enable_warmup=not args.no_warmup,
                       max_concurrent_rpcs=args.max_concurrent_rpcs or None,
                       max_request_bytes=args.max_request_bytes or None)
    server.serve_forever()
    return _EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """``python -m serving {query,serve-dev} ...``."""
    parser = argparse.ArgumentParser(prog="python -m serving",
                                     description="csp-tf serving client and development server")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_query_parser(subparsers)
    add_serve_parser(subparsers)
    args = parser.parse_args(argv)
    with for_args(args):
        return args.func(args)
