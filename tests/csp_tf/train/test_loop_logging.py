"""The epoch loop's progress lines: about ten per stage on the terminal, every epoch in DEBUG."""

import logging

import pytest

from csp_tf.train.loop import _epoch_log_level


@pytest.mark.parametrize("epochs, shown", [(1, 1), (8, 8), (10, 10), (30, 11), (500, 11), (505, 12)])
def test_about_ten_epochs_are_logged_at_info(epochs, shown):
    levels = [_epoch_log_level(e, epochs) for e in range(epochs)]
    assert levels.count(logging.INFO) == shown
    assert levels[0] == levels[-1] == logging.INFO  # the first and the last are always shown
    assert set(levels) <= {logging.INFO, logging.DEBUG}
