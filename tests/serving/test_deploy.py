"""The deployment files parse and agree with each other and with the client/dev-server defaults."""

import os
import re

import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving import cli, contract

SERVING = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "serving")
FLAGS = ("--enable_model_warmup=true", "--enable_batching=true",
         "--model_config_file=/config/models.config",
         "--batching_parameters_file=/config/batching.config",
         "--monitoring_config_file=/config/monitoring.config")


def _read(*parts: str) -> str:
    with open(os.path.join(SERVING, *parts)) as f:
        return f.read()


def test_models_config_is_a_model_server_config():
    config = text_format.Parse(_read("models.config"),
                               model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    assert (model.name, model.base_path, model.model_platform) == (
        contract.MODEL_NAME, "/models/csp", "tensorflow")
    assert model.model_version_policy.latest.num_versions == 2
    assert "version_labels" in _read("models.config")  # the stable/canary example


def test_batching_limit_matches_the_dev_server_default():
    text = _read("batching.config")
    max_batch = int(re.search(r"max_batch_size \{ value: (\d+) \}", text).group(1))
    allowed = [int(v) for v in re.findall(r"allowed_batch_sizes: (\d+)", text)]
    assert allowed[-1] == max_batch
    import argparse

    parser = argparse.ArgumentParser()
    cli.add_serve_parser(parser.add_subparsers())
    assert parser.parse_args(["serve-dev", "--model-base-path", "x"]).max_batch_size == max_batch
    assert 'path: "/monitoring/prometheus/metrics"' in _read("monitoring.config")


def test_compose_and_k8s_run_the_official_image_with_the_configs():
    compose = yaml.safe_load(_read("deploy", "docker-compose.yaml"))["services"]["csp-serving"]
    assert compose["image"] == "tensorflow/serving:2.16.1"
    assert set(compose["ports"]) == {"8500:8500", "8501:8501"}
    assert all(flag in compose["command"] for flag in FLAGS)
    docs = {d["kind"]: d for d in yaml.safe_load_all(_read("deploy", "k8s.yaml"))}
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "tensorflow/serving:2.16.1"
    assert all(flag in container["args"] for flag in FLAGS)
    assert {p["containerPort"] for p in container["ports"]} == {8500, 8501}
    assert container["readinessProbe"]["httpGet"]["path"] == "/v1/models/csp"
    assert {p["port"] for p in docs["Service"]["spec"]["ports"]} == {8500, 8501}
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/models/csp", "/config"} <= mounts
