"""msqmri's processing steps as nipype interfaces, for users who build their own nipype workflows.

Each interface is a :class:`nipype.interfaces.base.SimpleInterface` derived from a step's declaration
(:mod:`msqmri.workflow.steps`), so it calls the same library function as the Snakemake rule: the step's file
inputs are traits (optional ones need not be set), its parameters are traits with the library's defaults, and
every output key of the step is an output trait. Outputs are written into the node's working directory under
the derivative names of :mod:`msqmri.workflow.layout`: ``stem`` gives a session's BIDS prefix (e.g.
``sub-01_ses-01``); a session pair's steps take ``participant_id``/``session_from``/``session_to`` instead (e.g.
``sub-01``, ``ses-01``, ``ses-02``; ``interval_days`` for annualised rates) and name their outputs
``sub-01_ses-01to02_...``; a subject's take ``participant_id``. Each interface's ``rule`` is the Snakemake rule
it mirrors. Example::

    from nipype import Node, Workflow
    from msqmri.interfaces import Structural, MTR
    structural = Node(Structural(t1w="sub-01_T1w.nii.gz", stem="sub-01"), name="structural")
    mtr = Node(MTR(mt_on=..., mt_off=..., stem="sub-01"), name="mtr")
    wf = Workflow("msqmri", base_dir="work")
    wf.connect(structural, "preproc", mtr, "t1w")
    wf.connect(structural, "brain_mask", mtr, "t1w_mask")
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    InputMultiObject,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from msqmri.core.io import private_tempdir
from msqmri.workflow.step import Input, Param, Step
from msqmri.workflow.steps import STEPS

#: the traits naming a job, by scope: what the outputs are named after, and the ids the step's ``ids`` reads
SCOPE_TRAITS = {
    "session": {"stem": traits.Str(mandatory=True, desc="BIDS prefix of the outputs, e.g. sub-01_ses-01")},
    "pair": {
        "participant_id": traits.Str(mandatory=True, desc="the subject, e.g. sub-01"),
        "session_from": traits.Str(mandatory=True, desc="the earlier session, e.g. ses-01"),
        "session_to": traits.Str(mandatory=True, desc="the later session, e.g. ses-02"),
        "interval_days": traits.Float(desc="days between the sessions (annualised rates, chronic black holes)"),
    },
    "subject": {"participant_id": traits.Str(mandatory=True, desc="the subject, e.g. sub-01")},
}
#: parameters a subject step's job gives that a nipype user sets as lists
LIST_PARAMS = {
    "session_ids": traits.List(traits.Either(traits.Str, None), mandatory=True, desc="its sessions, in time order"),
    "days": traits.List(traits.Either(traits.Float, None), desc="each session's day (chronic black holes)"),
}


def _input_trait(spec: Input) -> Any:
    file = File(exists=True, mandatory=not spec.optional, desc=spec.desc)
    return InputMultiObject(File(exists=True), mandatory=not spec.optional, desc=spec.desc) if spec.many else file


def _param_trait(name: str, spec: Param) -> Any:
    """The trait of a parameter the user sets (the job's own ids come from the scope traits)."""
    if name in LIST_PARAMS:
        return LIST_PARAMS[name]
    if spec.choices:
        return traits.Enum(*spec.choices, usedefault=True, desc=spec.desc)
    kind = {bool: traits.Bool, int: traits.Int, float: traits.Float, str: traits.Str}[type(spec.default)]
    return kind(spec.default, usedefault=True, desc=spec.desc)


class _StepInterface(SimpleInterface):
    """A step run by nipype: outputs in the node's directory, named as the workflow names them."""

    step: ClassVar[Step]
    rule: ClassVar[str]
    outputs_layout: ClassVar[Mapping[str, str]]

    def _wildcards(self) -> dict[str, str]:
        """Values of the layout patterns' wildcards: outputs go to the node's directory."""
        if self.step.scope == "pair":
            session_to = self.inputs.session_to.removeprefix("ses-")
            return {"subject": ".", "pair": f"{self.inputs.participant_id}_{self.inputs.session_from}to{session_to}"}
        if self.step.scope == "subject":
            return {"subject": self.inputs.participant_id}
        return {"sesdir": ".", "stem": self.inputs.stem}

    def _paths(self, cwd: str) -> dict[str, str]:
        paths = {}
        for key, pattern in self.outputs_layout.items():
            path = os.path.join(cwd, pattern.format(**self._wildcards()))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            paths[key] = os.path.normpath(path)
        return paths

    def _ids(self) -> dict[str, Any]:
        """The job's ids, as the workflow's ``ids`` parameter (a pair's ``interval_days`` None when unknown)."""
        if self.step.scope == "pair":
            interval = self.inputs.interval_days if isdefined(self.inputs.interval_days) else None
            return {
                "participant_id": self.inputs.participant_id,
                "session_from": self.inputs.session_from,
                "session_to": self.inputs.session_to,
                "interval_days": interval,
            }
        subject, _, session = self.inputs.stem.partition("_")
        return {"participant_id": subject, "session_id": session or None}

    def _params(self) -> dict[str, Any]:
        values = {}
        for name in self.step.params:
            if name == "ids":
                values[name] = self._ids()
            elif name == "participant_id":
                values[name] = self.inputs.participant_id
            elif name == "days" and not isdefined(self.inputs.days):
                values[name] = [None] * len(self.inputs.sessions)
            else:
                values[name] = getattr(self.inputs, name)
        return values

    def _run_interface(self, runtime: Any) -> Any:
        paths = self._paths(runtime.cwd)
        given = {key: getattr(self.inputs, key) for key in self.step.inputs}
        files = {key: value for key, value in given.items() if isdefined(value) and value}
        with private_tempdir():
            self.step.run(files, paths, self._params())
        self._results.update(paths)
        return runtime


def _interface(step: Step) -> type:
    """The interface class of ``step``; its specs are defined in this module (nipype pickles results, so every
    class must be importable by name)."""
    settable = {
        name: _param_trait(name, spec) for name, spec in step.params.items() if name not in ("ids", "participant_id")
    }
    inputs = {key: _input_trait(spec) for key, spec in step.inputs.items()}
    fields = {"__module__": __name__, **SCOPE_TRAITS[step.scope], **inputs, **settable}
    outputs = {"__module__": __name__, **{key: File(desc=key) for key in step.outputs}}
    specs = {
        "input_spec": type(f"_{step.interface}InputSpec", (BaseInterfaceInputSpec,), fields),
        "output_spec": type(f"_{step.interface}OutputSpec", (TraitedSpec,), outputs),
    }
    for spec in specs.values():
        globals()[spec.__name__] = spec
    doc = f"{step.doc} (:func:`{step.call.replace(':', '.')}`)."
    return type(
        step.interface,
        (_StepInterface,),
        {
            "__module__": __name__,
            "__doc__": doc,
            "step": step,
            "rule": step.name,
            "outputs_layout": step.outputs,
            **specs,
        },
    )


for _step in STEPS.values():
    if _step.interface:
        globals()[_step.interface] = _interface(_step)
__all__ = [step.interface for step in STEPS.values() if step.interface]
