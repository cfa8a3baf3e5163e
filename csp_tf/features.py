"""Feature keys of the csp-tf ``tf.Example`` schema (documented in docs/data.md). Nothing else."""

ID = "id"
LON = "lon"
LAT = "lat"
IMAGE_FEATURES = "image_features"
LABEL = "label"  # int64 class index, -1 when the row is unlabeled
CLASS_RANK = "class_rank"  # int64 rank of the row inside its class (hash order), -1 if unlabeled
CLASS_COUNT = "class_count"  # int64 number of labeled train rows of the row's class, 0 if unlabeled
REGION = "region"  # bytes, coarse region name used for evaluation slices
# float: the manifest's ``subset`` column (train rows): the smallest label ratio whose labeled
# subset includes the row; -1 when absent (the class_rank rule decides, csp_tf.data.splits).
LABEL_SUBSET = "label_subset"

SPLITS = ("pretrain", "train", "val", "test")
NO_SUBSET = -1.0
UNLABELED = -1
