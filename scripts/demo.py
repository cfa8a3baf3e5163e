"""The README's main job, end to end on the embedded demo world:

1. generate the small demo world (species ranges on land, look-alikes, observer bias, a few
   bad rows) and ingest it with the Beam pipeline (bad rows → dead letter);
2. run the full TFX pipeline locally (LocalDagRunner): ImportExampleGen → StatisticsGen →
   SchemaGen → ExampleValidator → pre-train Trainer → fine-tune Trainer → Evaluator → Pusher;
3. serve the pushed model (development gRPC server; TF Serving's PredictionService protos)
   and query every signature through tensorflow-serving-api's stubs;
4. print a short report: Img-only vs CSP, component wall times, where the artifacts are.

    python scripts/demo.py --out runs/demo [--size small] [--preset demo] [--set k=v ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

from csp_tf.logs import command_output


def _step(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/demo", help="everything goes under this dir")
    p.add_argument("--size", default="small", help="generated world size (small | benchmark)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preset", default="demo")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--fresh", action="store_true", help="delete --out first (default: reuse, "
                   "so a re-run shows TFX caching)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also show the logs (Beam, TFX, TensorFlow) on the console")
    args = p.parse_args(argv)
    out = os.path.abspath(args.out)
    if args.fresh:
        shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out, exist_ok=True)
    # The terminal shows the stages and results; TF's C++ start-up lines, Beam, TFX and
    # warnings go to OUT/demo.log (-v shows them here too).
    with command_output("demo", args.verbose, os.path.join(out, "demo.log")):
        return _demo(args, out)


def _demo(args: argparse.Namespace, out: str) -> int:
    t_start = time.time()

    from csp_tf.cli import load_config
    from csp_tf.models.loading import load_csp_model
    from csp_tf.data.ingest import run_ingest
    from csp_tf.data.world import generate_world

    world_dir, data_root = os.path.join(out, "world"), os.path.join(out, "data")
    _step("1/4 generate the demo world and ingest it with Beam")
    if not os.path.exists(os.path.join(data_root, "metadata.json")):
        world = generate_world(world_dir, args.size, seed=args.seed, inject_bad_rows=True)
        summary = run_ingest(world["manifest"], data_root, feature_dim=world["params"]["feature_dim"],
                             class_names=world["class_names"])
    else:
        summary = json.load(open(os.path.join(data_root, "summary.json")))
    print(f"{sum(summary['rejected'].values())} rejected rows, each with its reason → "
          f"{data_root}/dead_letter/")

    cfg = load_config(argparse.Namespace(config=None, preset=args.preset, overrides=args.overrides))

    _step("2/4 run the TFX pipeline locally (LocalDagRunner)")
    from tfx_pipeline.local_runner import run_local
    serving_dir = os.path.join(out, "serving", "csp")
    run = run_local(pipeline_root=os.path.join(out, "pipeline"), data_root=data_root,
                    serving_dir=serving_dir, config=cfg,
                    metadata_path=os.path.join(out, "metadata.sqlite"))
    for name, seconds in run.get("component_seconds", {}).items():
        print(f"  {name:<28s} {seconds:7.1f} s")
    versions = sorted(int(v) for v in os.listdir(serving_dir) if v.isdigit()) if os.path.isdir(serving_dir) else []
    if not versions:
        print("the model was not blessed, so nothing was pushed: "
              f"{run.get('not_blessed_reason') or 'see the Evaluator output'} "
              f"(artifacts under {out}/pipeline)")
        return 1
    print(f"pushed version {versions[-1]} → {serving_dir}")

    _step("3/4 serve it and query over gRPC (tensorflow-serving-api stubs)")
    import numpy as np
    from csp_tf.train.data_root import DataRoot
    from serving.client import CSPServingClient
    from serving.dev_server import DevServer

    val = DataRoot.open(data_root).labeled("val")
    with DevServer(serving_dir, model_name="csp") as server:
        with CSPServingClient(f"127.0.0.1:{server.port}", model_name="csp") as client:
            client.wait_until_available(timeout_s=120)
            status = client.status()
            print(f"model status: {status}")
            pts = np.array([[-122.4, 37.8], [2.35, 48.86], [151.2, -33.9]], np.float32)
            prior = client.location_prior(pts)
            emb = client.location_embedding(pts)
            cls = client.classify(val["image_features"][:3], val["lon_lat"][:3])
            names = open(os.path.join(data_root, "labels.txt")).read().split()
            for (lon, lat), row in zip(pts, prior):
                top = np.argsort(-row)[:3]
                print(f"  location_prior({lon:7.2f}, {lat:6.2f}): " +
                      ", ".join(f"{names[i]} {row[i]:.2f}" for i in top))
            print(f"  location_embedding: shape {emb.shape}, |e| = {np.linalg.norm(emb, axis=1).round(2)}")
            for i in range(3):
                print(f"  classify(val row {i}): true {names[val['label'][i]]}, top-3 "
                      f"{[names[c] for c in cls['top_k_classes'][i][:3]]}")

    _step("4/4 report")
    from csp_tf.evaluate import evaluate_model
    model = load_csp_model(os.path.join(serving_dir, str(versions[-1]), "assets.extra", "model.keras"))
    # test, not val: the image probe's L2 and the fusion weights were chosen on val.
    m = evaluate_model(model, DataRoot.open(data_root).labeled("test"))
    rows = [("Img-only (linear probe on image features)", m["image"]),
            ("Location only (CSP encoder, fine-tuned)", m["location"]),
            ("CSP fused (calibrated on val)", m["fused"])]
    ratio = cfg.finetune.label_ratio
    print(f"test split, {int(m['fused']['count'])} rows, fine-tuned on {ratio:.0%} of train labels")
    print(f"  {'method':<44s} {'top-1':>7s} {'top-3':>7s} {'MRR':>6s}")
    for name, r in rows:
        print(f"  {name:<44s} {r['top1']:7.2f} {r['top3']:7.2f} {r['mrr']:6.3f}")
    report = {"metrics": m, "component_seconds": run.get("component_seconds", {}),
              "serving_dir": serving_dir, "pushed_version": versions[-1], "data_root": data_root,
              "pipeline_root": os.path.join(out, "pipeline"), "wall_s": time.time() - t_start}
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(f"\nartifacts: data {data_root} | pipeline {out}/pipeline | MLMD {out}/metadata.sqlite | "
          f"serving {serving_dir} | report {out}/report.json   ({time.time() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
