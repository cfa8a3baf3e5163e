import pytest

from train_world import toy_world


@pytest.fixture
def world():
    return toy_world()
