"""``compile_kubeflow`` / ``csp-tf pipeline compile --kubeflow``: the KFP v2 spec's tasks,
images, parameters and the base_model edge between the two Trainers."""

from __future__ import annotations

import json

import pytest

from pipeline_test_helpers import tiny_config

IMAGE = "gcr.io/example/csp-tf:test"
DATAFLOW = ["--runner=DataflowRunner", "--project=p", "--region=us-central1",
            "--temp_location=gs://b/tmp"]
BEAM_COMPONENTS = ("ImportExampleGen", "StatisticsGen", "Evaluator")


@pytest.fixture(scope="module")
def spec(tiny_data_root, tmp_path_factory):
    from tfx_pipeline.kubeflow_runner import compile_kubeflow

    out = tmp_path_factory.mktemp("kfp")
    cfg = tiny_config().override({"runtime.distribution": "multi_worker", "runtime.jit_compile": "on",
                                  "runtime.mixed_precision": "auto"})
    path = compile_kubeflow(str(out / "root"), tiny_data_root, "gs://b/serving", cfg,
                            str(out / "pipeline.json"), image=IMAGE, beam_args=DATAFLOW)
    with open(path) as f:
        return json.load(f)


def _tasks(spec):
    return spec["pipelineSpec"]["root"]["dag"]["tasks"]


def _param(task, name):
    return task["inputs"]["parameters"][name]["runtimeValue"]["constantValue"]["stringValue"]


def test_spec_has_every_component(spec):
    assert spec["pipelineSpec"]["schemaVersion"] == "2.0.0"
    assert set(_tasks(spec)) == {
        "ImportExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "AnomaliesGate",
        "pretrain_trainer", "finetune_trainer", "Evaluator", "ModelGate", "Pusher",
        "latest_blessed_model_resolver-model-resolver",
        "latest_blessed_model_resolver-model-blessing-resolver"}


def test_every_container_runs_the_project_image(spec):
    executors = spec["pipelineSpec"]["deploymentSpec"]["executors"]
    containers = {k: v["container"] for k, v in executors.items() if "container" in v}
    assert len(containers) == 10
    assert {c["image"] for c in containers.values()} == {IMAGE}
    for name in BEAM_COMPONENTS:
        args = containers[f"{name}_executor"]["args"]
        assert all(a in args for a in DATAFLOW), (name, args)
    # The custom executors are named by import path: they must import from the installed package.
    import importlib

    for name in ("ImportExampleGen", "AnomaliesGate"):
        args = containers[f"{name}_executor"]["args"]
        module, _, cls = args[args.index("--executor_class_path") + 1].rpartition(".")
        assert module.startswith("tfx_pipeline.components.")
        assert hasattr(importlib.import_module(module), cls)


def test_base_model_edge_between_the_trainers(spec):
    finetune = _tasks(spec)["finetune_trainer"]
    edge = finetune["inputs"]["artifacts"]["base_model"]["taskOutputArtifact"]
    assert edge == {"producerTask": "pretrain_trainer", "outputArtifactKey": "model"}
    for trainer in ("pretrain_trainer", "finetune_trainer"):
        assert "AnomaliesGate" in _tasks(spec)[trainer]["dependentTasks"]
    evaluator = _tasks(spec)["Evaluator"]["inputs"]["artifacts"]
    assert evaluator["baseline_model"]["taskOutputArtifact"]["producerTask"] == \
        "latest_blessed_model_resolver-model-resolver"


def test_trainer_parameters_carry_the_config(spec):
    tasks = _tasks(spec)
    assert _param(tasks["pretrain_trainer"], "run_fn") == "tfx_pipeline.trainer_pretrain.run_fn"
    assert _param(tasks["finetune_trainer"], "run_fn") == "tfx_pipeline.trainer_finetune.run_fn"
    custom = json.loads(_param(tasks["finetune_trainer"], "custom_config"))
    runtime = custom["experiment"]["runtime"]
    assert (runtime["distribution"], runtime["jit_compile"], runtime["mixed_precision"]) == \
        ("multi_worker", "on", "auto")
    assert custom["experiment"]["data"]["feature_dim"] == 64 and len(custom["class_names"]) == 8
    assert custom["code_version"].startswith(IMAGE + "@")
    assert json.loads(_param(tasks["pretrain_trainer"], "train_args"))["splits"] == ["pretrain", "train"]
    pusher = json.loads(_param(tasks["Pusher"], "push_destination"))
    assert pusher["filesystem"]["base_directory"] == "gs://b/serving"


def test_no_runtime_parameters(spec):
    # TFX 1.16's KubeflowV2 compiler mishandles RuntimeParameters (tensorflow/tfx#7733).
    root_inputs = spec["pipelineSpec"]["root"].get("inputDefinitions", {})
    assert not root_inputs.get("parameters")
    assert not spec.get("runtimeConfig", {}).get("parameterValues")
