"""One worker of the two-process MultiWorkerMirroredStrategy test (run by test_multiworker.py)."""

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))


def main(out_dir: str, result_path: str) -> None:
    from conftest import toy_world
    from csp_tf.configs import get_preset
    from csp_tf.train import from_arrays, pretrain

    cfg = get_preset("demo")
    cfg.data.num_classes, cfg.data.feature_dim = 4, 8
    cfg.location_encoder.hidden_dim, cfg.location_encoder.num_filts = 32, 16
    cfg.location_encoder.position.frequency_num = 8
    cfg.pretrain.epochs, cfg.pretrain.batch_size = 2, 64
    cfg.runtime.progress, cfg.runtime.jit_compile = False, "off"
    cfg.runtime.distribution = "multi_worker"
    r = pretrain(cfg, from_arrays(toy_world(), 64, seed=0), out_dir)
    weights = [v.numpy() for v in r.model.location_encoder.weights]
    np.savez(result_path, *weights)
    with open(result_path + ".json", "w") as f:
        json.dump({"history": r.history, "completed": r.completed}, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
