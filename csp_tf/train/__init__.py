"""Training: the pre-training and fine-tuning stages with custom ``tf.function`` steps."""

from csp_tf.train.inputs import StageInput, balanced_indices, from_arrays, from_tfrecords
from csp_tf.train.stages import StageResult, finetune, load_base_model, pretrain
from csp_tf.train.data_root import DataRoot, stage_inputs

__all__ = ["DataRoot", "StageInput", "StageResult", "balanced_indices", "finetune", "from_arrays",
           "from_tfrecords", "load_base_model", "pretrain", "stage_inputs"]
