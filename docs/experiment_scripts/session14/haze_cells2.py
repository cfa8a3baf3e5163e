"""Control set: split test places by whether their nearest labelled place shares the label's 5'
cell; score the 1-NN and csp-tf cells (location-only) on both parts."""
import sys
import numpy as np
from sklearn.neighbors import BallTree
from csp_tf.experiments.analysis import correct_by_class
from csp_tf.experiments.baselines import located_labeled
from csp_tf.models.loading import load_csp_model
from csp_tf.train.data_root import DataRoot
ratio = float(sys.argv[1])
data = DataRoot.open("runs/haze/data")
te = located_labeled(data.labeled("test")); tr = located_labeled(data.labeled("train", ratio))
def cell(ll): return np.floor((90 - ll[:, 1]) * 12).astype(int) * 10000 + np.floor((ll[:, 0] + 180) * 12).astype(int)
X = lambda ll: np.radians(ll[:, ::-1].astype(np.float64))
_, i = BallTree(X(tr["lon_lat"]), metric="haversine").query(X(te["lon_lat"]), k=1)
nn = i[:, 0]
same = cell(tr["lon_lat"])[nn] == cell(te["lon_lat"])
knn = tr["label"][nn] == te["label"]
print(f"{ratio:g}: same cell {same.mean()*100:.1f} % of test; 1-NN same {knn[same].mean()*100:.2f} other {knn[~same].mean()*100:.2f} all {knn.mean()*100:.2f}")
for path in sys.argv[2:]:
    hits = correct_by_class(load_csp_model(path), te, "location_probabilities").astype(bool)
    print(f"  {path.split('finetune/')[1]}: same {hits[same].mean()*100:.2f} other {hits[~same].mean()*100:.2f} all {hits.mean()*100:.2f}")
