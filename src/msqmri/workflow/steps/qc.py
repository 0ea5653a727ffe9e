"""QC: each subject's longitudinal plot and HTML report, and the cohort report."""

from __future__ import annotations

from typing import Any

from msqmri.inputs.bids import session_pairs
from msqmri.workflow import layout
from msqmri.workflow.jobs import Job
from msqmri.workflow.step import Input, Param, Report, Step
from msqmri.workflow.steps.lesions import session_t1w_maps

#: the group tables the reports read, by name (msqmri.qc.report.TABLE_NAMES)
GROUP_TABLES = {
    "sessions": layout.SESSIONS_TABLE,
    "volumes": layout.BRAIN_VOLUMES_TABLE,
    "pbvc": layout.PBVC_TABLE,
    "regional": layout.REGIONAL_METRICS_TABLE,
    "lesions": layout.LESIONS_TABLE,
    "counts": layout.LESION_COUNTS_TABLE,
    "activity": layout.LESION_ACTIVITY_TABLE,
    "flags": layout.MONITORING_TABLE,
    "compliance": layout.PROTOCOL_TABLE,
    "enhancing": layout.ENHANCING_LESIONS_TABLE,
    "response": layout.TREATMENT_RESPONSE_TABLE,
    "prognosis": layout.PROGNOSIS_TABLE,
}
TABLES = {name: Input(path) for name, path in GROUP_TABLES.items()}


def report_files(job: Job) -> tuple[list[tuple[str, dict[str, str]]], list[tuple[str, dict[str, str]]]]:
    """(sessions, pairs) of a subject's report: the label and the files (T1w space, or the pair's halfway space)
    of each session and session pair, by key."""
    sessions, pairs = [], []
    for session in job.subject.sessions:
        files = {
            "t1w": layout.STRUCTURAL["preproc"],
            "brain_mask": layout.STRUCTURAL["brain_mask"],
            "dseg": layout.STRUCTURAL["dseg"],
            "lesions": layout.LESION_IDS,
            "from_template": layout.STRUCTURAL["from_template"],
            **session_t1w_maps(job.run.job("session", layout.session_wildcards(session))),
        }
        if session.t1w_ce is not None:
            files |= {"enhancement": layout.CEL["enhancement"], "cel": layout.CEL["labels"]}
        wildcards = layout.session_wildcards(session)
        sessions.append((session.label, {key: job.run.out(p.format(**wildcards)) for key, p in files.items()}))
    for first, second in session_pairs(job.subject.sessions):
        files = {key: layout.HALFWAY[key] for key in ("image_from", "image_to", "brain_from", "brain_to")}
        files["status"] = layout.LESION_ACTIVITY["status"]
        if "siena" in job.run.pbvc_methods:
            files["flow"] = layout.PBVC["siena"]["flow"]
        if first.flair is not None and second.flair is not None:
            files["subtraction"] = layout.FLAIR_SUBTRACTION
        wildcards = layout.pair_wildcards(first, second)
        pairs.append(
            (
                f"{first.label} -> {second.session_id}",
                {key: job.run.out(p.format(**wildcards)) for key, p in files.items()},
            )
        )
    return sessions, pairs


def report_inputs(job: Job) -> dict[str, Any]:
    """Every file a subject's report reads: its images, the group tables and its longitudinal plot."""
    sessions, pairs = report_files(job)
    images = [path for _, files in [*sessions, *pairs] for path in files.values()]
    return {"images": images, **job.outs(GROUP_TABLES), "plot": job.out(layout.LONGITUDINAL_PLOT)}


SUBJECT = Param("the subject, e.g. sub-01", job=lambda job: job.subject.participant_id)

STEPS = (
    Step(
        name="longitudinal_plot",
        scope="subject",
        call="msqmri.qc.report:write_longitudinal_plot",
        local=True,
        doc="A subject's longitudinal plot: PBVC, lesion counts, volumes and regional metrics over time",
        inputs=TABLES,
        outputs={"plot": layout.LONGITUDINAL_PLOT},
        params={"participant_id": SUBJECT},
        reports=(Report("plot", "longitudinal.rst", "Longitudinal", "{subject}"),),
        wiring=lambda job: job.outs(GROUP_TABLES),
    ),
    Step(
        name="subject_report",
        scope="subject",
        call="msqmri.qc.report:write_subject_report",
        itk=True,
        doc="A subject's self-contained HTML QC report",
        inputs={
            "images": Input("the subject's images and masks the report shows", many=True),
            **TABLES,
            "plot": Input("its longitudinal plot"),
        },
        outputs={"report": layout.SUBJECT_REPORT},
        params={
            "participant_id": SUBJECT,
            "files": Param("(sessions, pairs): each one's label and files by key", job=report_files),
        },
        reports=(Report("report", "subject.rst", "QC reports"),),
        wiring=report_inputs,
    ),
    Step(
        name="cohort_report",
        scope="dataset",
        call="msqmri.qc.report:write_cohort_report",
        local=True,
        doc="group/cohort_report.html: the cohort's tables, outliers and PBVC by site",
        inputs=TABLES,
        outputs={"report": layout.COHORT_REPORT},
        reports=(Report("report", "cohort.rst", "QC reports"),),
        wiring=lambda job: job.outs(GROUP_TABLES),
    ),
)
