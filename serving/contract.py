"""Names of the csp-tf SavedModel serving contract (docs/architecture.md), as plain constants.

One place for the signature, input and output names that the client, the development server,
the warmup writer and the stand-in test model share. Importing this module is free: no
TensorFlow, no gRPC.
"""

MODEL_NAME = "csp"

# Signatures.
SERVING_DEFAULT = "serving_default"
PREDICT_FEATURES = "predict_features"
LOCATION_EMBEDDING = "location_embedding"
LOCATION_PRIOR = "location_prior"
CLASSIFY = "classify"  # TF Serving Classify API (method tensorflow/serving/classify)
PREDICT_SIGNATURES = (SERVING_DEFAULT, PREDICT_FEATURES, LOCATION_EMBEDDING, LOCATION_PRIOR)
SIGNATURES = PREDICT_SIGNATURES + (CLASSIFY,)

# SignatureDef method names (tensorflow/cc/saved_model/signature_constants.h).
PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"

# Inputs.
EXAMPLES = "examples"  # tf.string [None]: serialized tf.Example (image_features, lon, lat)
IMAGE_FEATURES = "image_features"  # float32 [None, F]
LON_LAT = "lon_lat"  # float32 [None, 2], degrees, (lon, lat)

# Outputs.
PROBABILITIES = "probabilities"  # fused P(y|img)·P(y|loc) (or the prior, in location_prior)
IMAGE_PROBABILITIES = "image_probabilities"
LOCATION_PROBABILITIES = "location_probabilities"
TOP_K_SCORES = "top_k_scores"
TOP_K_CLASSES = "top_k_classes"  # int32
EMBEDDING = "embedding"  # float32 [None, D]
CLASSIFY_INPUTS = "inputs"  # tf.string [None]: serialized tf.Example, as EXAMPLES (kClassifyInputs)
CLASSES = "classes"  # tf.string [None, k]: label names, best first (kClassifyOutputClasses)
SCORES = "scores"  # float32 [None, k]: fused scores of those classes (kClassifyOutputScores)
CLASSIFIER_OUTPUTS = (PROBABILITIES, IMAGE_PROBABILITIES, LOCATION_PROBABILITIES,
                      TOP_K_SCORES, TOP_K_CLASSES)

SIGNATURE_INPUTS = {
    SERVING_DEFAULT: (EXAMPLES,),
    PREDICT_FEATURES: (IMAGE_FEATURES, LON_LAT),
    LOCATION_EMBEDDING: (LON_LAT,),
    LOCATION_PRIOR: (LON_LAT,),
    CLASSIFY: (CLASSIFY_INPUTS,),
}
SIGNATURE_OUTPUTS = {
    SERVING_DEFAULT: CLASSIFIER_OUTPUTS,
    PREDICT_FEATURES: CLASSIFIER_OUTPUTS,
    LOCATION_EMBEDDING: (EMBEDDING,),
    LOCATION_PRIOR: (PROBABILITIES,),
    CLASSIFY: (CLASSES, SCORES),
}


# Docker / Kubernetes convention of the tensorflow/serving image.
GRPC_PORT = 8500
# TF Serving accepts messages up to INT_MAX bytes; -1 lifts gRPC Python's 4 MiB default.
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
REST_PORT = 8501
# serve-dev's request size limit (INVALID_ARGUMENT above it): 128 rows of 2048 float features
# as tf.Examples are about 1.1 MiB.
DEV_MAX_REQUEST_BYTES = 8 << 20
