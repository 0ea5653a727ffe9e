"""The step declarations (msqmri.workflow.steps): each names a library function that takes what it declares,
with the library's own defaults, and every config key a step reads exists in the config schema."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import yaml

from msqmri.workflow.steps import STEPS

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


@pytest.mark.parametrize("name", list(STEPS))
def test_a_step_calls_a_function_taking_its_inputs_outputs_and_params(name: str) -> None:
    step = STEPS[name]
    signature = inspect.signature(step.function())
    positional = list(signature.parameters)[:2]
    assert positional == ["inputs", "outputs"], name
    for param, spec in step.params.items():
        assert param in signature.parameters, (name, param)
        default = signature.parameters[param].default
        if default is not inspect.Parameter.empty and spec.default is not None:
            assert spec.default == default, (name, param, spec.default, default)  # nipype's default is the library's
    required = [p for p, v in signature.parameters.items() if v.default is inspect.Parameter.empty][2:]
    assert set(required) <= set(step.params), (name, required)


def test_every_config_key_a_step_reads_is_in_the_schema() -> None:
    properties = yaml.safe_load(SCHEMA.read_text())["properties"]
    for step in STEPS.values():
        for name, param in step.params.items():
            if param.config is not None:
                assert param.config in properties, (step.name, name, param.config)
                default = properties[param.config].get("default")
                assert param.default is None or default == param.default, (step.name, name, default, param.default)
