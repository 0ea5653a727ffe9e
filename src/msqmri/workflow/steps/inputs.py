"""Per-session input validation and a descriptive T1w summary."""

from __future__ import annotations

from msqmri.workflow import layout
from msqmri.workflow.step import Input, Param, Step
from msqmri.workflow.steps.common import session_files

STEPS = (
    Step(
        name="check_inputs",
        scope="session",
        call="msqmri.inputs.checks:write_check",
        local=True,
        doc="Validate every modality of a session and record the inputs chosen for it",
        inputs={"files": Input("every raw input file of the session", many=True)},
        outputs={"check": layout.INPUT_CHECK},
        params={"session": Param("the session (msqmri.inputs.bids.Session)", job=lambda job: job.session)},
        wiring=lambda job: {"files": session_files(job)},
    ),
    Step(
        name="t1w_summary",
        scope="session",
        call="msqmri.qc.summary:write_t1w_summary",
        local=True,
        doc="Geometry, intensity percentiles and foreground volume of a session's T1w",
        inputs={"t1w": Input("raw T1w image")},
        outputs={"summary": layout.T1W_SUMMARY},
        wiring=lambda job: {"t1w": str(job.session.t1w)},
    ),
)
