"""Control label (haze): the session-14 cells with a place memory added afterwards
(``add_place_memory``: the cell's own label subset, vote chosen on val, fusion re-calibrated on
val), scored on test. Writes one CSV row per cell: location (with memory), network alone, fused;
saves each model with its config under runs/final6/hm/ (an experiment-like tree that
`csp-tf compare` reads)."""
import csv
import os
import shutil
import sys

from csp_tf.calibration import calibrate_fusion
from csp_tf.evaluate import evaluate_model
from csp_tf.memory_calibration import add_place_memory
from csp_tf.models.loading import load_csp_model
from csp_tf.train.data_root import DataRoot

O = "/work/main/runs/final5"
data = DataRoot.open("/work/main/runs/haze/data")
val, test = data.labeled("val"), data.labeled("test")
out = csv.writer(open(sys.argv[1], "w"))
out.writerow(["method", "ratio", "seed", "location_top1", "location_network_top1", "fused_top1",
              "fused_before_top1", "k", "power", "concentration"])
for ratio, run in ((0.01, "h"), (0.05, "h"), (0.2, "hb")):
    train = data.labeled("train", ratio)
    for seed in (0, 1, 2):
        for method in ("sup_grid", "mse", "nce", "csp", "csp_multiply"):
            cell = f"{O}/{run}_seed{seed}/finetune/{method}/ratio{ratio:g}/seed{seed}"
            model = load_csp_model(cell)
            before = evaluate_model(model, test)["fused"]["top1"]
            new = add_place_memory(model, train, val)
            calibrate_fusion(new, val, train["label"])
            m = evaluate_model(new, test)
            p = new.place_memory.params.numpy()
            dest = f"/work/main/runs/final6/hm/finetune/{method}/ratio{ratio:g}/seed{seed}"
            os.makedirs(dest, exist_ok=True)
            new.save(f"{dest}/model.keras")
            shutil.copy(f"{cell}/config.yaml", dest)
            out.writerow([method, ratio, seed, m["location"]["top1"],
                          m.get("location_network", m["location"])["top1"], m["fused"]["top1"],
                          before, int(p[0]), p[1], p[2]])
            print(method, ratio, seed, f"{m['location']['top1']:.2f}", flush=True)
