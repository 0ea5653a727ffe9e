"""A workflow step declared once: its inputs, outputs, parameters and library call.

Everything else is derived from a :class:`Step`: the Snakemake rule (``workflow/rules/steps.smk`` loops over
:data:`msqmri.workflow.steps.STEPS`), the one script every rule runs (``scripts/step.py`` ->
:func:`msqmri.workflow.adapter.run_step`) and the nipype interface (:mod:`msqmri.interfaces`). The library
call has one signature for every step, ``call(inputs, outputs, **params)``: ``inputs`` and ``outputs`` map
the declared keys to paths (a list for an input declared ``many``), ``params`` are the declared parameters.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from msqmri.workflow.jobs import Job

#: what one job of a step covers, and the wildcards of its output patterns
SCOPES = {
    "session": ("sesdir", "stem"),
    "pair": ("subject", "pair"),
    "subject": ("subject",),
    "dataset": (),
}


@dataclass(frozen=True)
class Input:
    """A file input: described for users, optional or not, one path or a list (``many``)."""

    desc: str
    optional: bool = False
    many: bool = False


@dataclass(frozen=True)
class Param:
    """A parameter of the library call: its default, and where the workflow takes it from (a config key, or a
    function of the job such as its BIDS ids); ``choices`` restrict it."""

    desc: str
    default: Any = None
    config: str | None = None
    job: Callable[[Job], Any] | None = None
    choices: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Report:
    """An output shown in Snakemake's HTML report (``snakemake --report``)."""

    key: str
    caption: str
    category: str
    subcategory: str | None = None


@dataclass(frozen=True)
class Step:
    """One processing step (see the module docstring).

    ``wiring`` is the workflow's input function: the paths of the declared inputs for one job (raw inputs of
    the session, or other steps' outputs). ``itk`` steps get the configured ITK thread count (set before the
    library imports antspyx); ``threads`` fixes a job's cores (passed on as the ``threads`` parameter when
    the call takes it). Jobs of ``local`` steps run in Snakemake's own process; a ``group``'s jobs of one
    session go to a cluster as one job. ``interface`` names the nipype interface (None: no interface).
    """

    name: str
    scope: str
    call: str
    doc: str
    inputs: Mapping[str, Input]
    outputs: Mapping[str, str]
    wiring: Callable[[Job], Mapping[str, Any]]
    params: Mapping[str, Param] = field(default_factory=dict)
    itk: bool = False
    threads: int | None = None
    local: bool = False
    group: str | None = None
    reports: tuple[Report, ...] = ()
    interface: str | None = None

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"step {self.name}: unknown scope {self.scope!r}")
        if unknown := set(self.params) & set(self.inputs):
            raise ValueError(f"step {self.name}: {', '.join(sorted(unknown))} both an input and a parameter")

    def function(self) -> Callable[..., None]:
        """The library call (imported only when a job runs: the heavy imports stay out of the DAG build)."""
        module, _, name = self.call.partition(":")
        return getattr(importlib.import_module(module), name)

    def run(self, inputs: Mapping[str, Any], outputs: Mapping[str, str], params: Mapping[str, Any]) -> None:
        """Call the library with the declared inputs that are set (a list input always, empty when no file is
        there this run, e.g. no session has a post-contrast T1w), every output and the parameters."""
        given = {key: inputs[key] for key in self.inputs if inputs.get(key) not in (None, [], "")}
        given |= {key: [] for key, spec in self.inputs.items() if spec.many and key not in given}
        missing = [key for key, spec in self.inputs.items() if not spec.optional and key not in given]
        if missing:
            raise ValueError(f"step {self.name}: missing input {', '.join(missing)}")
        self.function()(given, dict(outputs), **params)
