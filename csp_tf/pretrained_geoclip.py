"""GeoCLIP's pre-trained location encoder (Vivanco Cepeda et al., NeurIPS 2023) in Keras.

The weights ship inside the ``geoclip`` wheel on PyPI (MIT licence), pinned here by version and
sha256 like the data sets' archives (csp_tf.datasets.sources). Only ``csp-tf geoclip fetch``
downloads it (``pip download --no-deps``, into ``--cache``, default ``runs/cache``); loading never
touches the network, never installs or imports the package, and needs no PyTorch: the
checkpoint is read by csp_tf.torch_state_dict's allow-listed unpickler.

The port: ``location_encoder.position.type=geoclip`` (Equal Earth + Gaussian Fourier features
at σ = 1, 16, 256) and the ``capsules`` network (one 3 × 1024 ReLU MLP per σ, a 512-d linear
head each, summed). GeoCLIP takes (lat, lon); this model takes csp-tf's (lon, lat) degrees and
returns GeoCLIP's 512-d embedding (not normalised, as GeoCLIP's ``LocationEncoder`` returns it)::

    enc = load_geoclip_encoder()                     # keras.Model, (B, 2) -> (B, 512)
    export_geoclip_encoder("runs/geoclip")           # a directory like a shipped encoder:
    # csp-tf finetune --base-model runs/geoclip ...  # fine-tune from GeoCLIP's weights
"""

from __future__ import annotations

import argparse
import os
from typing import Dict, Optional

import numpy as np

from csp_tf.datasets.sources import Source, fetch, read_member, sha256_of

DEFAULT_CACHE = os.path.join("runs", "cache")
WEIGHTS_MEMBER = "geoclip/model/weights/location_encoder_weights.pth"
GEOCLIP_SOURCE = Source(
    key="geoclip", package="geoclip", version="1.3.0",
    filename="geoclip-1.3.0-py3-none-any.whl",
    sha256="08a93791166a279d52b95c466a952c75f17f654cc61bdf6ab20355325b564dec",
    members=(WEIGHTS_MEMBER,),
    licence="MIT (geoclip package: code and weights)",
    upstream="GeoCLIP (Vivanco Cepeda, Nayak, Shah; NeurIPS 2023): the location encoder trained "
             "on MP-16 (4.7M geotagged Flickr images) against CLIP image features")
WHEEL_MB = 40.3  # the wheel's download size; the location encoder's .pth in it is 37.8 MB


class GeoCLIPError(FileNotFoundError):
    """The pinned wheel is not where it was looked for, or is not the pinned one."""


def geoclip_location_encoder_config():
    """The LocationEncoderConfig of GeoCLIP's encoder (what its checkpoint fits)."""
    from csp_tf.configs import LocationEncoderConfig
    from csp_tf.encoder_options import PositionEncoderConfig

    return LocationEncoderConfig(
        position=PositionEncoderConfig("geoclip"), network="capsules", num_hidden_layer=3,
        hidden_dim=1024, num_filts=512, dropout=0.0, activation="relu", use_layn=False,
        skip_connection=False)


def fetch_wheel(cache_dir: str = DEFAULT_CACHE) -> str:
    """Downloads (or reuses) the pinned wheel in ``cache_dir``; its verified path."""
    return fetch(GEOCLIP_SOURCE, cache_dir)


def find_wheel(wheel: Optional[str] = None, cache_dir: str = DEFAULT_CACHE) -> str:
    """The verified wheel: ``wheel`` (the file, or a directory holding it, e.g. a pip download
    dir), else ``cache_dir``'s copy. Never downloads: GeoCLIPError says how to fetch it."""
    path = wheel or cache_dir
    if os.path.isdir(path):
        path = os.path.join(path, GEOCLIP_SOURCE.filename)
    if not os.path.isfile(path):
        raise GeoCLIPError(f"{path}: no {GEOCLIP_SOURCE.filename}; fetch it with `csp-tf geoclip "
                           f"fetch --cache {cache_dir if wheel is None else 'DIR'}` ({WHEEL_MB} MB "
                           f"from PyPI) or pass the file from `pip download --no-deps "
                           f"{GEOCLIP_SOURCE.requirement}`")
    actual = sha256_of(path)
    if actual != GEOCLIP_SOURCE.sha256:
        raise GeoCLIPError(f"{path}: sha256 {actual} is not the pinned {GEOCLIP_SOURCE.requirement} "
                           f"({GEOCLIP_SOURCE.sha256})")
    return path


def read_geoclip_weights(wheel_path: str) -> Dict[str, np.ndarray]:
    """GeoCLIP's location-encoder state dict, read out of the wheel without torch."""
    from csp_tf.torch_state_dict import read_state_dict

    return read_state_dict(read_member(wheel_path, WEIGHTS_MEMBER))


def assign_geoclip_weights(location_encoder, state: Dict[str, np.ndarray]) -> None:
    """Copies GeoCLIP's ``LocEnc{i}.capsule.{0,1,3,5}`` / ``head.0`` tensors into a built
    ``geoclip`` + ``capsules`` LocationEncoder (Linear weights transposed to Keras kernels).
    Every tensor must be present, fit and be used: ValueError names the first that is not."""
    pe, net = location_encoder.position_encoder, location_encoder.network
    names = [f"LocEnc{i}.capsule.0.b" for i in range(net.num_capsules)]
    pairs = [(pe.b, names, np.stack)]  # (variable, tensor names, how to combine them)
    for i in range(net.num_capsules):
        layers = [(layer, f"LocEnc{i}.capsule.{2 * j + 1}") for j, layer in enumerate(net.hidden(i))]
        for layer, name in layers + [(net.head(i), f"LocEnc{i}.head.0")]:
            pairs.append((layer.kernel, [name + ".weight"], lambda vs: vs[0].T))
            pairs.append((layer.bias, [name + ".bias"], lambda vs: vs[0]))
    wanted = [n for _, ns, _ in pairs for n in ns]
    missing = [n for n in wanted if n not in state]
    extra = sorted(set(state) - set(wanted))
    if missing or extra:
        raise ValueError(f"GeoCLIP checkpoint does not fit the port: missing {missing[:5]}, "
                         f"unused {extra[:5]}")
    for variable, ns, combine in pairs:
        value = combine([state[n] for n in ns])
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(f"GeoCLIP tensor {ns[0]}: shape {value.shape} does not fit "
                             f"{variable.path} {tuple(variable.shape)}")
        variable.assign(value.astype(np.float32))


def load_geoclip_encoder(wheel: Optional[str] = None, cache_dir: str = DEFAULT_CACHE):
    """GeoCLIP's location encoder as a csp-tf StandaloneLocationEncoder: (B, 2) lon/lat degrees
    -> (B, 512); eval mode. See ``find_wheel`` for where the weights come from."""
    from csp_tf.pretrained import StandaloneLocationEncoder

    state = read_geoclip_weights(find_wheel(wheel, cache_dir))
    enc = StandaloneLocationEncoder(geoclip_location_encoder_config(), name="geoclip_location_encoder")
    assign_geoclip_weights(enc.location_encoder, state)
    return enc


def export_geoclip_encoder(out_dir: str, wheel: Optional[str] = None,
                           cache_dir: str = DEFAULT_CACHE) -> str:
    """Writes ``out_dir`` in the shipped-encoder layout (csp_tf.pretrained): usable by
    ``load_location_encoder(out_dir)``, ``csp-tf finetune --base-model out_dir``, TF Serving."""
    from csp_tf.configs import get_preset
    from csp_tf.pretrained import export_encoder

    enc = load_geoclip_encoder(wheel, cache_dir)
    cfg = get_preset("places")
    cfg.location_encoder = geoclip_location_encoder_config()
    cfg.data.feature_dim = cfg.data.num_classes = 0  # set from the data root when fine-tuning
    card = {"name": "geoclip", "method": "GeoCLIP location encoder, ported to Keras",
            "source": GEOCLIP_SOURCE.requirement, "wheel_sha256": GEOCLIP_SOURCE.sha256,
            "licence": GEOCLIP_SOURCE.licence, "input": "lon, lat degrees (csp-tf order)",
            "parameters": int(sum(np.prod(v.shape) for v in enc.weights))}
    sources = (f"# Sources\n\nWeights: `{WEIGHTS_MEMBER}` from the PyPI wheel "
               f"`{GEOCLIP_SOURCE.filename}` (sha256 `{GEOCLIP_SOURCE.sha256}`), "
               f"{GEOCLIP_SOURCE.licence}.\n\n{GEOCLIP_SOURCE.upstream}.\n")
    return export_encoder(enc, out_dir, config=cfg, card=card, sources_md=sources)


# ----- csp-tf geoclip fetch | export ---------------------------------------------------------
def add_geoclip_parser(sub) -> None:
    p = sub.add_parser("geoclip", help="GeoCLIP's pre-trained location encoder (pinned PyPI "
                       "wheel, MIT): fetch it, export it as a csp-tf encoder")
    verbs = p.add_subparsers(dest="geoclip_command", metavar="VERB", required=True)
    f = verbs.add_parser("fetch", help=f"download and verify {GEOCLIP_SOURCE.requirement}'s wheel "
                         f"({WHEEL_MB} MB) into --cache; the only step that uses the network")
    f.add_argument("--cache", default=DEFAULT_CACHE, metavar="DIR")
    f.set_defaults(func=_cmd_fetch)
    e = verbs.add_parser("export", help="write the Keras port as an encoder dir (location_encoder"
                         ".keras, saved_model/, config.yaml, card.json): a --base-model for "
                         "`csp-tf finetune`, or load_location_encoder(DIR)")
    e.add_argument("--out", required=True, metavar="DIR")
    e.add_argument("--wheel", default=None, metavar="PATH",
                   help="the wheel file or a directory holding it (default: --cache)")
    e.add_argument("--cache", default=DEFAULT_CACHE, metavar="DIR")
    e.set_defaults(func=_cmd_export)


def _cmd_fetch(args: argparse.Namespace) -> int:
    path = fetch_wheel(args.cache)
    print(f"{path}: {GEOCLIP_SOURCE.requirement}, sha256 verified")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    out = export_geoclip_encoder(args.out, args.wheel, args.cache)
    print(f"wrote {out}: GeoCLIP's location encoder, (lon, lat) -> 512")
    return 0
