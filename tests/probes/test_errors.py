"""The one error module: every kit error is an ElicitError, so one except clause catches them."""

from __future__ import annotations

import importlib
import inspect

import pytest

import probes.errors as errors

MODULES = [
    "probes.errors",
    "probes.models.checkpoint",
    "probes.models.files",
    "probes.models.config_keys",
    "probes.models.family",
    "probes.models.generation",
    "probes.models.hooks",
    "probes.models.positions",
    "probes.models.registry",
    "probes.models.standin",
    "probes.models.tokens",
    "probes.data.tasks",
    "probes.data.activations",
]


def test_every_error_class_of_the_model_and_data_modules_is_an_elicit_error() -> None:
    found = []
    for name in MODULES:
        for _, cls in inspect.getmembers(importlib.import_module(name), inspect.isclass):
            if issubclass(cls, Exception) and cls.__module__ == name:
                found.append(cls.__name__)
                assert issubclass(cls, errors.ElicitError), f"{name}.{cls.__name__}"
    assert sorted(found) == sorted(errors.__all__)  # every error class is defined in probes.errors


@pytest.mark.parametrize("name", errors.__all__)
def test_exported_and_catchable(name: str) -> None:
    cls = getattr(errors, name)
    with pytest.raises(errors.ElicitError, match="bad value"):
        raise cls("bad value")
