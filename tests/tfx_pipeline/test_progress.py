"""component_progress: absl's component records become progress lines; other records do not."""

import logging

from tfx_pipeline.progress import component_progress


def test_component_records_become_lines_and_the_handler_is_removed():
    lines = []
    absl = logging.getLogger("absl")
    level = absl.level
    with component_progress(2, lines.append):
        absl.info("Component %s is running.", "StatisticsGen")
        absl.info("tensorflow_text is not available.")
        absl.setLevel(logging.WARNING)  # what absl's flag parsing in a Beam executor does
        absl.info("Component %s is finished.", "StatisticsGen")
        absl.info("Component %s is running.", "Pusher")
    absl.info("Component %s is running.", "Late")
    assert len(lines) == 3, lines
    assert lines[0].startswith("pipeline: [1/2] StatisticsGen running (+")
    assert lines[1].startswith("pipeline: StatisticsGen done in ")
    assert lines[2].startswith("pipeline: [2/2] Pusher running")
    absl.setLevel(logging.ERROR)
    assert absl.level == logging.ERROR  # setLevel is absl's own again
    absl.setLevel(level)
    assert not any(
        type(h).__name__ == "_ComponentLines" for h in absl.handlers)
