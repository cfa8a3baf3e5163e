"""The library's sub-commands of ``csp-tf`` and the helpers every command shares.

``add_stage_parsers(subparsers)`` registers ``config``, ``pretrain``, ``finetune``,
``evaluate``, ``export``, ``export-encoder`` and ``embed``; ``add_config_args`` /
``load_config`` are the ``--preset`` / ``--config`` / ``--set`` flags of every command that
takes a config (tfx_pipeline and the experiments use them too), ``run_command`` turns a user
error into one line and exit status 2. The console script itself is assembled outside the
library, in ``csp_cli`` (docs/architecture.md). Nothing here imports TensorFlow until a
command runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


def add_config_args(p: argparse.ArgumentParser, applies_to: str = "") -> None:
    """``--preset NAME`` or ``--config FILE``, then any number of ``--set key=value``."""
    from csp_tf.presets import PRESETS  # data only: no TensorFlow

    g = p.add_argument_group("configuration")
    g.add_argument("--preset", default=None,
                   help=f"named config: {', '.join(PRESETS)} (default: demo, or the config saved "
                        "with the model the command starts from, when it takes one)")
    g.add_argument("--config", default=None, help="YAML/JSON config file (see `csp-tf config`)")
    g.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config value, e.g. --set pretrain.lr=1e-4 (repeatable)"
                        + (f"; applies to {applies_to}" if applies_to else ""))


def _stage_args(p: argparse.ArgumentParser, stage: str) -> None:
    """Flags shared by the training stages."""
    p.add_argument("--data-root", required=True, help="output dir of `csp-tf ingest`")
    p.add_argument("--out", required=True, help="output dir (checkpoints, model.keras, config); "
                   "re-running with the same --out resumes")
    p.add_argument("--epochs", type=int, help=f"shortcut for --set {stage}.epochs=N")
    p.add_argument("--max-steps", type=int, help="stop after N steps this run (resumable)")
    add_config_args(p)
    p.set_defaults(func=cmd_stage, stage=stage)


def load_config(args, fallback_dir: Optional[str] = None):
    """--config, else --preset, else the config saved in ``fallback_dir``, else ``demo``."""
    import yaml
    from csp_tf.configs import ExperimentConfig, get_preset

    if args.config:
        cfg = ExperimentConfig.load(args.config)
    elif args.preset:
        cfg = get_preset(args.preset)
    elif fallback_dir and os.path.exists(os.path.join(fallback_dir, "config.yaml")):
        cfg = ExperimentConfig.load(os.path.join(fallback_dir, "config.yaml"))
    else:
        cfg = get_preset("demo")
    overrides = {}
    for item in args.overrides:
        if "=" not in item:
            raise CLIError(f"--set {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        overrides[key] = yaml.safe_load(value)
    return cfg.override(overrides) if overrides else cfg


def cmd_config(args) -> int:
    cfg = load_config(args)
    cfg.validate()
    if args.out:
        cfg.save(args.out)
        print(f"wrote {args.out}")
    else:
        print(cfg.to_yaml(), end="")
    return 0


def cmd_stage(args) -> int:
    """``pretrain`` or ``finetune`` (``args.stage``) on an ingested data root."""
    from csp_tf import train
    from csp_tf.train.data_root import DataRoot, stage_inputs

    base_model = getattr(args, "base_model", None)  # finetune only
    if base_model:
        from csp_tf.train.base_encoder import resolve_base

        base_model = resolve_base(base_model)  # a shipped encoder's name -> its directory
    root = DataRoot.open(args.data_root)
    cfg = load_config(args, base_model)
    if base_model:
        from csp_tf.train.base_encoder import for_new_data

        cfg = for_new_data(cfg, base_model)  # an encoder dir's data shapes are not this data's
    cfg = root.configure(cfg)
    section = getattr(cfg, args.stage)
    if getattr(args, "label_ratio", None) is not None:
        section.label_ratio = args.label_ratio
    if args.stage == "finetune" and cfg.location_encoder.capacity == "auto":
        from csp_tf.capacity import describe, resolve_capacity

        cfg = resolve_capacity(cfg, root.labeled("train", cfg.finetune.label_ratio)["lon_lat"],
                               keep_encoder=bool(base_model))
        section = cfg.finetune
        print(describe(cfg))
    if args.epochs is not None:
        section.epochs = args.epochs
    extra = {"base_model_dir": base_model} if args.stage == "finetune" else {}
    from csp_tf.locks import writer_lock

    with writer_lock(args.out, f"csp-tf {args.stage}"):  # one run per --out (its checkpoints)
        result = getattr(train, args.stage)(cfg, output_dir=args.out, max_steps=args.max_steps,
                                            **extra, **stage_inputs(cfg, root, args.stage))
    _report(result, args.out)
    return 0


def cmd_evaluate(args) -> int:
    from csp_tf.evaluate import evaluate_model
    from csp_tf.train.data_root import DataRoot
    from csp_tf.models.loading import load_csp_model

    model = load_csp_model(args.model)
    metrics = evaluate_model(model, DataRoot.open(args.data_root).labeled(args.split))
    text = json.dumps(metrics, indent=2)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    print(text)
    return 0


def cmd_export(args) -> int:
    from csp_tf.export import export_saved_model
    from csp_tf.models.loading import load_csp_model

    target = {"savedmodel": ("--export-base", args.export_base), "tflite": ("--out", args.out)}
    if not target[args.format][1]:
        raise CLIError(f"--format {args.format} needs {target[args.format][0]}")
    model, cfg = load_csp_model(args.model), _saved_config(args.model)
    names = None
    if cfg is not None and cfg.data.data_root and os.path.exists(os.path.join(cfg.data.data_root, "labels.txt")):
        names = open(os.path.join(cfg.data.data_root, "labels.txt")).read().split("\n")[:model.num_classes]
    if args.format == "tflite":
        from csp_tf.export_tflite import TFLiteExportError, export_tflite, print_summary

        try:
            print_summary(export_tflite(model, args.out, class_names=names,
                                        precisions=args.precision.split(",")), args.out)
        except TFLiteExportError as e:
            raise CLIError(str(e)) from e
        return 0
    path = export_saved_model(model, args.export_base, config=cfg, class_names=names,
                              version=args.version, top_k=args.top_k)
    print(path)
    return 0


def cmd_export_encoder(args) -> int:
    from csp_tf.pretrained import export_location_encoder
    from csp_tf.models.loading import load_csp_model

    from csp_tf import provenance

    model, cfg = load_csp_model(args.model), _saved_config(args.model)
    if cfg is None:
        raise CLIError(f"{args.model} has no config.yaml: the card records the config's hash")
    card = json.load(open(args.card)) if args.card else {}
    # How it was made, without this machine's paths: the export command, the recipe's hash and
    # the training data's fingerprint (csp_tf/provenance.py).
    try:
        card.update(command=provenance.portable_command(sys.argv),
                    config_hash=provenance.config_hash(cfg),
                    data_fingerprint=provenance.data_fingerprint(
                        args.data_root or cfg.data.data_root))
    except provenance.ProvenanceError as e:
        raise CLIError(f"{e}; pass --data-root") from e
    if args.train_command:
        card["training_command"] = args.train_command
    sources = open(args.sources).read() if args.sources else None
    out = export_location_encoder(model, args.out, config=cfg, card=card, sources_md=sources)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
    print(f"wrote {out} ({size / 1e6:.2f} MB)")
    return 0


def cmd_embed(args) -> int:
    import numpy as np
    import pandas as pd
    from csp_tf.coords import check_lon_lat_array
    from csp_tf.models.loading import load_csp_model

    model = load_csp_model(args.model)
    if not os.path.exists(args.csv):
        raise CLIError(f"--csv {args.csv!r} does not exist")
    df = pd.read_csv(args.csv)
    for col in ("lon", "lat"):
        if col not in df.columns:
            raise CLIError(f"{args.csv}: missing column {col!r} (need lon and lat in degrees)")
    lon_lat = df[["lon", "lat"]].to_numpy(np.float32)
    check_lon_lat_array(lon_lat, source=args.csv)
    emb = model.location_embedding(lon_lat).numpy()
    out = pd.concat([df, pd.DataFrame(emb, columns=[f"emb_{i}" for i in range(emb.shape[1])])], axis=1)
    out.to_csv(args.out, index=False)
    print(f"wrote {len(out)} embeddings of size {emb.shape[1]} to {args.out}")
    return 0


def _saved_config(model_dir: str):
    """The ExperimentConfig saved with a stage, or None."""
    from csp_tf.configs import ExperimentConfig

    path = os.path.join(model_dir, "config.yaml")
    return ExperimentConfig.load(path) if os.path.exists(path) else None


def _report(result, out: str) -> None:
    last = result.history[-1] if result.history else {}
    state = "finished" if result.completed else "paused (resume by re-running the same command)"
    print(json.dumps({"output_dir": out, "state": state, "last_epoch": last}, indent=2))


def add_stage_parsers(sub) -> None:
    """Registers the library's commands on the ``csp-tf`` sub-parsers."""
    p = sub.add_parser("config", help="print or save a config (preset + overrides)")
    add_config_args(p)
    p.add_argument("--out", help="write it to this YAML/JSON file instead of printing")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("pretrain", help="self-supervised pre-training of the location encoder",
                       description="Pre-trains the location encoder on every location-image pair "
                       "of an ingested data root (no labels used). Re-running the same command "
                       "resumes from the last checkpoint in --out.")
    _stage_args(p, "pretrain")

    p = sub.add_parser("finetune", help="fine-tune on few labels (+ the image classifier)",
                       description="Fine-tunes a location encoder on the label-ratio subset of "
                       "the train split. With --base-model it starts from a pre-trained encoder "
                       "(CSP); without, from scratch (the Sup-only baseline).")
    p.add_argument("--base-model", help="a `csp-tf pretrain` output dir, or a location-encoder "
                   "dir: a shipped one by name (e.g. places), an `export-encoder` or `csp-tf "
                   "geoclip export` output (its encoder weights only)")
    p.add_argument("--label-ratio", type=float, help="fraction of train labels, e.g. 0.05")
    _stage_args(p, "finetune")

    p = sub.add_parser("evaluate", help="top-1/3/5/10 and MRR: fused, image-only, location-only")
    p.add_argument("--data-root", required=True)
    p.add_argument("--model", required=True, help="a `csp-tf finetune` output dir")
    p.add_argument("--split", default="val", choices=["val", "test", "train"])
    p.add_argument("--out", help="also write the JSON metrics here")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("export", help="write a TF Serving SavedModel version, or TFLite files",
                       description="Exports <model>/model.keras as <export-base>/<version>/ with "
                       "signatures serving_default, predict_features, location_embedding, "
                       "location_prior and TF Serving warmup requests. With --format tflite: "
                       "<out>/location_<precision>.tflite (signatures location_prior and "
                       "location_embedding, the network alone: no place memory) and "
                       "<out>/tflite_export.json (docs/serving.md).")
    p.add_argument("--model", required=True)
    p.add_argument("--format", choices=["savedmodel", "tflite"], default="savedmodel")
    p.add_argument("--export-base", help="(savedmodel) model base path TF Serving watches")
    p.add_argument("--version", type=int, help="(savedmodel) version number (default: Unix time)")
    p.add_argument("--top-k", type=int, default=5, help="(savedmodel)")
    p.add_argument("--out", help="(tflite) output dir for the .tflite files and their JSON")
    p.add_argument("--precision", default="fp32,int8,fp16",
                   help="(tflite) comma-separated: fp32, int8 (dynamic-range: int8 weights, "
                        "float32 activations), fp16 (float16 weights) (default: all three)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("export-encoder",
                       help="write the location encoder alone (.keras + SavedModel) for reuse",
                       description="Writes OUT/location_encoder.keras (lon/lat degrees -> "
                       "embedding), OUT/saved_model (signature location_embedding), config.yaml, "
                       "card.json (this command, the config hash and the training data's "
                       "fingerprint; no paths) and, with --sources, SOURCES.md; both files are "
                       "reloaded and "
                       "checked against the trained model. Load with "
                       "csp_tf.pretrained.load_location_encoder(OUT).")
    p.add_argument("--model", required=True, help="a pretrain / finetune stage dir")
    p.add_argument("--out", required=True)
    p.add_argument("--sources", default=None, help="a SOURCES.md to copy (data provenance)")
    p.add_argument("--card", default=None, help="a JSON file of facts to record in card.json")
    p.add_argument("--data-root", default=None,
                   help="the data root the model was trained on, for the card's data "
                        "fingerprint (default: the one in the stage's config.yaml)")
    p.add_argument("--train-command", default=None,
                   help="the command that trained the stage, recorded in card.json")
    p.set_defaults(func=cmd_export_encoder)

    p = sub.add_parser("embed", help="CSV of lon,lat → CSV with location embeddings")
    p.add_argument("--model", required=True)
    p.add_argument("--csv", required=True, help="input CSV with columns lon, lat (degrees)")
    p.add_argument("--out", required=True, help="output CSV: input columns + emb_0..emb_{D-1}")
    p.set_defaults(func=cmd_embed)


def run_command(args: argparse.Namespace) -> int:
    """Runs ``args.func(args)``; a user error is one line on stderr and exit status 2, a
    preempted training stage (SIGTERM) one line and ``PREEMPTED_EXIT_CODE`` (75), a NaN/inf
    loss one line and exit status 1."""
    from csp_tf.configs import ConfigError
    from csp_tf.coords import CoordinateError
    from csp_tf.data.errors import DataError
    from csp_tf.diskspace import DiskFullError
    from csp_tf.locks import LockHeldError
    from csp_tf.preemption import PREEMPTED_EXIT_CODE, Preempted

    try:
        return int(args.func(args) or 0)
    except (CLIError, ConfigError, CoordinateError, DataError, FileNotFoundError,
            FileExistsError, DiskFullError, LockHeldError) as e:
        print(f"csp-tf {args.command}: error: {e}", file=sys.stderr)
        return 2
    except Preempted as e:  # SIGTERM: a checkpoint was saved; the same command resumes
        print(f"csp-tf {args.command}: preempted: {e}", file=sys.stderr)
        return PREEMPTED_EXIT_CODE
    except FloatingPointError as e:  # a NaN/inf loss or weights: training stopped at that step
        print(f"csp-tf {args.command}: error: {e}", file=sys.stderr)
        return 1
