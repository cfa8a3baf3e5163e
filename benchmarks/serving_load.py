"""Load benchmark of the gRPC serving path against the in-process SavedModel call.

For 1, 8 and 32 concurrent clients (threads, one ``CSPServingClient`` each) on loopback, each
for ``--duration`` seconds: throughput, p50/p99 latency and errors of ``--signature`` at
``--batch-size``. In the same run it times the in-process call of the same signature
(``tf.saved_model.load(...).signatures[name](**inputs)``, numpy in, numpy out) and the round
trip of one client to an empty PredictionService in another process (the floor gRPC Python puts
under any server on this machine), and reports gRPC p50 at concurrency 1 / in-process p50
(aim: <= 1.5x, 0 errors).

The server is the DEVELOPMENT server (``python -m serving serve-dev``) in a subprocess, unless
``--address`` points at a running server (e.g. TF Serving). Without ``--model-dir`` it serves
the STAND-IN test model (serving.standin_model: random weights, production signatures), and
says so in its output.

    .venv/bin/python benchmarks/serving_load.py --out runs/serving_load.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import grpc  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc  # noqa: E402

from serving import contract  # noqa: E402
from serving.client import CSPServingClient, ServingError  # noqa: E402
from serving.model_manager import list_versions  # noqa: E402

TARGET_RATIO = 1.5
# An empty PredictionService (answers every Predict with an empty response), run in its own
# process: its round trip is the floor that gRPC Python itself puts under any server here.
_ECHO_SERVER = """
import sys
from concurrent import futures
import grpc
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
class Echo(prediction_service_pb2_grpc.PredictionServiceServicer):
    def Predict(self, request, context):
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(request.model_spec)
        return response
server = grpc.server(futures.ThreadPoolExecutor(8))
prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Echo(), server)
server.add_insecure_port("127.0.0.1:" + sys.argv[1])
server.start()
server.wait_for_termination()
"""


def _inputs(signature: str, batch: int, feature_dim: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    lon_lat = np.stack([rng.uniform(-180, 180, batch), rng.uniform(-90, 90, batch)],
                       axis=1).astype(np.float32)
    if signature == contract.PREDICT_FEATURES:
        feats = rng.normal(size=(batch, feature_dim)).astype(np.float32)
        return {contract.IMAGE_FEATURES: feats, contract.LON_LAT: lon_lat}
    if signature in (contract.LOCATION_PRIOR, contract.LOCATION_EMBEDDING):
        return {contract.LON_LAT: lon_lat}
    raise ValueError(f"benchmark supports {contract.PREDICT_FEATURES}, "
                     f"{contract.LOCATION_PRIOR}, {contract.LOCATION_EMBEDDING}; got {signature}")


def _percentiles(latencies_s: list[float]) -> dict[str, float]:
    if not latencies_s:
        return {"p50_ms": float("nan"), "p99_ms": float("nan")}
    ms = np.asarray(latencies_s) * 1e3
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3)}


def in_process_latency(version_dir: str, signature: str, inputs: dict[str, np.ndarray],
                       duration_s: float) -> dict:
    """p50/p99 of the in-process signature call (numpy in, numpy out) for ``duration_s``."""
    function = tf.saved_model.load(version_dir).signatures[signature]

    def call():
        return {k: v.numpy() for k, v in function(**inputs).items()}

    for _ in range(20):  # trace and warm caches, as the server's warmup does
        call()
    latencies, deadline = [], time.perf_counter() + duration_s
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - start)
    return {"calls": len(latencies), **_percentiles(latencies)}


def run_load(address: str, signature: str, inputs: dict[str, np.ndarray], concurrency: int,
             duration_s: float, model_name: str = contract.MODEL_NAME) -> dict:
    """``concurrency`` client threads calling ``signature`` for ``duration_s`` seconds.

    Returns requests, errors (with the first few messages), throughput and p50/p99 latency.
    """
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors: list[str] = []
    barrier = threading.Barrier(concurrency + 1)
    deadline = [0.0]

    def worker(slot: int) -> None:
        with CSPServingClient(address, model_name, retries=0) as client:
            client.predict(signature, inputs)  # connect before the clock starts
            barrier.wait()
            while time.perf_counter() < deadline[0]:
                start = time.perf_counter()
                try:
                    client.predict(signature, inputs)
                    latencies[slot].append(time.perf_counter() - start)
                except ServingError as exc:
                    errors.append(str(exc))

    threads = [threading.Thread(target=worker, args=(i,), daemon=True)
               for i in range(concurrency)]
    for t in threads:
        t.start()
    deadline[0] = time.perf_counter() + duration_s
    barrier.wait()
    began = time.perf_counter()
    for t in threads:
        t.join(duration_s + 30)
    elapsed = time.perf_counter() - began
    done = [x for per_thread in latencies for x in per_thread]
    return {"concurrency": concurrency, "requests": len(done), "errors": len(errors),
            "error_samples": errors[:3], "throughput_rps": round(len(done) / elapsed, 1),
            **_percentiles(done)}


def transport_floor(inputs: dict[str, np.ndarray], duration_s: float) -> dict:
    """p50/p99 of one client's Predict round trip to an empty servicer in another process."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", _ECHO_SERVER, str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=120)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        for _ in range(50):
            stub.Predict(request, timeout=10)
        latencies, deadline = [], time.perf_counter() + duration_s
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            stub.Predict(request, timeout=10)
            latencies.append(time.perf_counter() - start)
        channel.close()
        return {"calls": len(latencies), **_percentiles(latencies)}
    finally:
        proc.terminate()
        proc.wait(30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_dev_server(base_path: str, max_workers: int, log_path: str
                      ) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "serving", "serve-dev", "--model-base-path", base_path,
         "--port", str(port), "--max-workers", str(max_workers)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": REPO}, stdout=log, stderr=subprocess.STDOUT)
    address = f"127.0.0.1:{port}"
    with CSPServingClient(address, retries=0, timeout_s=2.0) as client:
        client.wait_until_available(timeout_s=120)
    return proc, address


def _print_table(report: dict) -> None:
    print(f"model: {report['model']['label']} ({report['model']['base_path']})")
    print(f"server: {report['server']}")
    print(f"signature {report['signature']}, batch {report['batch_size']}, "
          f"{report['duration_s']} s per level, {report['machine']['cpus']} CPUs, load average "
          f"{report['machine']['load_average_1m_at_end']} at the end")
    print(f"{'clients':>8} {'requests':>9} {'errors':>7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for row in report["grpc"]:
        print(f"{row['concurrency']:>8} {row['requests']:>9} {row['errors']:>7} "
              f"{row['throughput_rps']:>9} {row['p50_ms']:>8} {row['p99_ms']:>8}")
    ip = report["in_process"]
    print(f"{'in-proc':>8} {ip['calls']:>9} {0:>7} {'':>9} {ip['p50_ms']:>8} {ip['p99_ms']:>8}")
    fl = report["grpc_floor_empty_servicer"]
    print(f"{'empty':>8} {fl['calls']:>9} {0:>7} {'':>9} {fl['p50_ms']:>8} {fl['p99_ms']:>8}"
          "   (gRPC round trip to an empty servicer: the transport floor)")
    print(f"gRPC p50 (1 client) / in-process p50 = {report['ratio_grpc_p50_over_in_process']}x "
          f"(aim <= {TARGET_RATIO}x); errors: {report['total_errors']}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", help="model base path (integer version dirs); default: "
                        "build the STAND-IN test model in a temporary directory")
    parser.add_argument("--address", help="benchmark this running server instead of starting "
                        "the development server (needs --model-dir for the in-process figure)")
    parser.add_argument("--signature", default=contract.LOCATION_PRIOR)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--concurrency", default="1,8,32",
                        help="comma-separated client counts (default %(default)s)")
    parser.add_argument("--duration", type=float, default=5.0,
                        help="seconds per concurrency level and for in-process (default 5)")
    parser.add_argument("--max-workers", type=int, default=32, help="dev server RPC threads")
    parser.add_argument("--out", help="write the JSON report here")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        if args.model_dir:
            base, label = args.model_dir, "export"
        else:
            from serving.standin_model import export_standin

            base = os.path.join(scratch, "csp")
            export_standin(base, version=1)
            label = "STAND-IN test model (serving.standin_model; random weights, production " \
                    "signatures) - not a trained CSP export"
        versions = list_versions(base)
        if not versions:
            parser.error(f"no version directory with saved_model.pb under {base}")
        version_dir = os.path.join(base, str(versions[-1]))
        meta = tf.saved_model.load(version_dir).signatures[args.signature]
        feature_dim = (meta.structured_input_signature[1][contract.IMAGE_FEATURES].shape[1]
                       if args.signature == contract.PREDICT_FEATURES else 0)
        inputs = _inputs(args.signature, args.batch_size, feature_dim)

        proc = None
        if args.address:
            address, server = args.address, f"running server at {args.address}"
        else:
            proc, address = _start_dev_server(base, args.max_workers,
                                              os.path.join(scratch, "server.log"))
            server = "DEVELOPMENT server (python -m serving serve-dev, subprocess), not TF Serving"
        try:
            in_process = in_process_latency(version_dir, args.signature, inputs, args.duration)
            floor = transport_floor(inputs, args.duration)
            levels = [run_load(address, args.signature, inputs, int(c), args.duration)
                      for c in args.concurrency.split(",")]
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(30)

    report = {
        "model": {"label": label, "base_path": args.model_dir or "(temporary)",
                  "version": versions[-1]},
        "server": server, "address_kind": "loopback" if "127.0.0.1" in address else address,
        "signature": args.signature, "batch_size": args.batch_size, "duration_s": args.duration,
        "machine": {"cpus": os.cpu_count(), "load_average_1m_at_end": round(os.getloadavg()[0], 2),
                    "python": platform.python_version(),
                    "tensorflow": tf.__version__, "grpcio": grpc.__version__},
        "in_process": in_process, "grpc": levels, "grpc_floor_empty_servicer": floor,
        "ratio_grpc_p50_over_in_process": round(levels[0]["p50_ms"] / in_process["p50_ms"], 2),
        "target_ratio": TARGET_RATIO,
        "total_errors": sum(level["errors"] for level in levels),
    }
    _print_table(report)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
        print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
