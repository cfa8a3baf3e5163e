"""The TFX pipeline's Beam components get the pipeline's ``beam_pipeline_args``: the flags that
run the ingest on another runner reach ImportExampleGen, StatisticsGen and Evaluator too."""

from __future__ import annotations

from pipeline_test_helpers import tiny_config

DASK = ["--runner=apache_beam.runners.dask.dask_runner.DaskRunner",
        "--dask_client_address=tcp://127.0.0.1:8786"]
BEAM_COMPONENTS = {"ImportExampleGen", "StatisticsGen", "Evaluator"}


def test_every_beam_component_carries_the_pipeline_beam_args(tiny_data_root, tmp_path):
    from tfx.dsl.compiler import compiler
    from tfx.proto.orchestration import executable_spec_pb2, pipeline_pb2

    from tfx_pipeline.local_runner import pipeline_for

    pipeline = pipeline_for(tiny_config(), tiny_data_root, str(tmp_path / "schema"),
                            pipeline_name="beam-args", pipeline_root=str(tmp_path / "root"),
                            serving_dir=str(tmp_path / "serving"), beam_pipeline_args=DASK)
    assert list(pipeline.beam_pipeline_args) == DASK
    ir = compiler.Compiler().compile(pipeline)
    deployment = pipeline_pb2.IntermediateDeploymentConfig()
    assert ir.deployment_config.Unpack(deployment)
    beam_specs = {}
    for node, spec in deployment.executor_specs.items():
        if spec.Is(executable_spec_pb2.BeamExecutableSpec.DESCRIPTOR):
            beam = executable_spec_pb2.BeamExecutableSpec()
            spec.Unpack(beam)
            beam_specs[node] = list(beam.beam_pipeline_args)
    assert set(beam_specs) == BEAM_COMPONENTS
    assert all(args == DASK for args in beam_specs.values())
