"""The Snakemake workflow and the msqmri command line, end to end on the tiny dataset."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pandas as pd
import psutil
import pytest
import yaml
from workflow_helpers import (
    check_quantitative_maps,
    check_report_renders,
    check_tensor_maps,
    msqmri,
    read_only,
    running_job,
    snakemake,
)

from msqmri.cli import main
from msqmri.cli.run import bundled_profile, collect_errors, failed_job_logs, find_snakefile
from msqmri.core.io import MsqmriInputError
from msqmri.inputs.bids import discover
from msqmri.lesions.regions import REGIONS
from msqmri.lesions.stage import LESION_COLUMNS, REGIONAL_COLUMNS, TRACKED_LESION_COLUMNS
from msqmri.workflow import layout
from msqmri.workflow.adapter import report_errors

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("configured", [True, False], ids=["configured", "bare"])
def test_lint_is_clean(tiny_bids: Path, tmp_path: Path, configured: bool) -> None:
    config = ["--config", f"bids_dir={tiny_bids}", f"output_dir={tmp_path / 'out'}"] if configured else []
    result = snakemake("--lint", *config, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_cli_participant_then_group(tiny_bids: Path, tmp_path: Path) -> None:
    out = tmp_path / "derivatives"
    # a treatment start 3 months before the first session, a second session 14 months later (beyond the
    # 12 months and their 31-day tolerance) on another scanner
    (tiny_bids / "sub-01" / "sub-01_sessions.tsv").write_text(
        "session_id\tacq_time\ttreatment_start\nses-01\t2020-01-15T09:00:00\t2019-10-01\nses-02\t2021-03-22T09:00:00\tn/a\n"
    )
    for ses, model in (("01", "Prisma"), ("02", "Skyra")):
        sidecar = tiny_bids / "sub-01" / f"ses-{ses}" / "anat" / f"sub-01_ses-{ses}_T1w.json"
        sidecar.write_text(
            json.dumps(
                {
                    "Manufacturer": "Siemens",
                    "ManufacturersModelName": model,
                    "MagneticFieldStrength": 3,
                    "MRAcquisitionType": "3D",
                }
            )
        )
    participant = msqmri(
        tiny_bids, out, "participant", "--cores", "2", "--config", "pbvc_methods=[siena]", cwd=tmp_path
    )
    assert participant.returncode == 0, participant.stderr
    dataset = discover(tiny_bids)
    for path in layout.participant_targets(dataset, ("siena",)):
        assert (out / path).is_file(), path
    assert not list(out.rglob("*desc-jacobian*"))  # the method selection is honoured
    check_tensor_maps(out / "sub-01" / "ses-01" / "dwi" / "sub-01_ses-01", tiny_bids)
    check_quantitative_maps(out / "sub-01" / "ses-01" / "anat" / "sub-01_ses-01", "weighted log-linear")
    assert (out / "sub-02" / "anat" / "sub-02_desc-t1w_qc.json").is_file()  # sessionless: no ses- level
    assert (
        participant.stderr.strip()
        .splitlines()[-1]
        .startswith("msqmri: participant stage done for 2 subjects / 3 sessions")
    )
    group = msqmri(tiny_bids, out, "group", "--config", "pbvc_methods=[siena]", cwd=tmp_path)
    assert group.returncode == 0, group.stderr
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert description["GeneratedBy"][0]["Name"] == "msqmri" and description["GeneratedBy"][0]["Version"]
    assert description["BIDSVersion"]
    table = pd.read_csv(out / "group" / "sessions.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert list(zip(table.participant_id, table.session_id, strict=True)) == [
        ("sub-01", "ses-01"),
        ("sub-01", "ses-02"),
        ("sub-02", "n/a"),
    ]
    assert table.loc[0, "modalities"] == "T1w,FLAIR,MTR,MEGRE,dwi" and table.loc[2, "t1w_orientation"] == "LAS"
    regional = pd.read_csv(out / "group" / "regional_metrics.tsv", sep="\t", keep_default_na=False)
    assert list(regional.columns) == list(REGIONAL_COLUMNS)  # the contract's columns, in order
    first = regional[regional.session_id == "ses-01"]
    assert set(first.metric) == {"fa", "md", "mtr", "r2star"} and set(first.region) == set(REGIONS)
    assert regional[regional.session_id != "ses-01"].empty  # T1w-only sessions have no maps to summarise
    lesion_columns = list(pd.read_csv(out / "group" / "lesions.tsv", sep="\t").columns)
    assert lesion_columns == list(TRACKED_LESION_COLUMNS) and lesion_columns[: len(LESION_COLUMNS)] == list(
        LESION_COLUMNS
    )
    check_group_reports(tiny_bids, out, tmp_path)
    check_kill_and_resume(tiny_bids, out, tmp_path)


def check_kill_and_resume(bids: Path, reference: Path, tmp_path: Path) -> None:
    """sub-02 again, from a read-only copy of the dataset: Snakemake and its running structural job are
    SIGKILLed mid-run; the rerun resumes (the lock of the killed run is released), recomputes only what was
    incomplete, retries a job killed once more (as by the out-of-memory killer, --retries 1) with twice its
    measured memory and time, leaves no partial output, and its outputs equal the uninterrupted run's."""
    out = tmp_path / "killed"
    with read_only(bids) as source:
        command = [
            sys.executable,
            "-m",
            "msqmri",
            str(source),
            str(out),
            "participant",
            "--participant-label",
            "02",
            "--cores",
            "2",
        ]
        first = subprocess.Popen(command, cwd=tmp_path, start_new_session=True, stderr=subprocess.PIPE, text=True)
        job = running_job(first.pid, "structural")
        targets = [out / path for path in layout.participant_targets(discover(bids, ["02"]))]
        quick = [
            out / layout.INPUT_CHECK.format(sesdir="sub-02", stem="sub-02"),
            out / layout.T1W_SUMMARY.format(sesdir="sub-02", stem="sub-02"),
        ]
        while job.is_running() and not all(path.exists() for path in quick):  # the quick jobs beside it finish
            time.sleep(0.2)
        time.sleep(3)  # and Snakemake records them as complete; the structural job is still running
        assert job.is_running()
        os.killpg(first.pid, signal.SIGKILL)  # msqmri and Snakemake
        job.kill()  # the job runs in a process group of its own
        first.communicate(timeout=60)
        psutil.wait_procs([job], timeout=30)
        done = {path: path.stat().st_mtime_ns for path in targets if path.exists()}
        assert done and len(done) < len(targets)  # killed half way
        assert not [p for p in out.rglob("*") if ".tmp" in p.name]  # no partial output survives the kill
        second = subprocess.Popen(
            [*command, "--retries", "1"], cwd=tmp_path, start_new_session=True, stderr=subprocess.PIPE, text=True
        )
        running_job(second.pid, "structural").kill()
        _, stderr = second.communicate(timeout=600)
    assert second.returncode == 0, stderr
    assert "removed the lock of an interrupted run" in stderr and "Traceback" not in stderr
    log = (out / "logs" / "snakemake_participant.log").read_text()
    retried = log[log.index("Trying to restart job") :]  # the killed job again, with twice the measured request
    need = yaml.safe_load((find_snakefile().parent / "workflow" / "resources.yaml").read_text())["rules"]["structural"]
    assert f"runtime={2 * need['runtime']}, mem_mb={2 * need['mem_mb']}," in retried
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in done.items())  # finished outputs kept
    for path in targets:
        expected = reference / path.relative_to(out)
        if path.name.endswith(".nii.gz"):
            assert np.array_equal(np.asarray(nib.load(path).dataobj), np.asarray(nib.load(expected).dataobj)), path
        elif path.suffix in (".json", ".tsv"):
            text = path.read_text().replace(f"{bids}-ro", str(bids)).replace(str(out), str(reference))
            assert text == expected.read_text(), path


def check_group_reports(bids: Path, out: Path, tmp_path: Path) -> None:
    """Monitoring flags, protocol compliance, harmonisation, plots and reports of the tiny group run;
    the reports render in headless Chromium and ``snakemake --report`` works on the run."""
    for path in layout.stage_targets("group", discover(bids)):
        assert (out / path).is_file(), path
    flags = pd.read_csv(out / layout.MONITORING_TABLE, sep="\t").iloc[0]
    assert (flags.session_from, flags.session_to, flags.pair_type) == ("ses-01", "ses-02", "consecutive")
    assert flags.pseudo_atrophy_caution and flags.protocol_changed and flags.interval_outside_3_12_months  # 14.2 months
    compliance = pd.read_csv(out / layout.PROTOCOL_TABLE, sep="\t")
    assert compliance.scanner_changed.tolist() == [False, False, True, False]  # ses-01 T1w, FLAIR; ses-02 T1w; sub-02
    assert "ManufacturersModelName Prisma -> Skyra" in compliance.changes[2]
    harmonized = pd.read_csv(out / layout.HARMONIZED_TABLE, sep="\t")
    assert list(harmonized.columns) == ["participant_id", "session_id", "site", *REGIONAL_COLUMNS[2:]]
    assert json.loads((out / layout.HARMONIZATION_MODEL).read_text())["notes"]  # one site has maps: says why not
    dom = check_report_renders(out / "sub-01.html", tmp_path)
    assert "interval outside 3-12 months" in dom and "sub-01 ses-01: FA" in dom and "SIENA edge displacement" in dom
    check_report_renders(out / "sub-02.html", tmp_path)
    cohort = check_report_renders(out / layout.COHORT_REPORT, tmp_path)
    assert 'href="../sub-01.html"' in cohort and 'href="../sub-02.html"' in cohort
    config = [f"bids_dir={bids}", f"output_dir={out}", "pbvc_methods=[siena]"]
    result = snakemake("--report", out / "snakemake_report.html", "--config", *config, cwd=out)
    assert result.returncode == 0, result.stderr
    assert "QC reports" in (out / "snakemake_report.html").read_text()


def test_cli_participant_label_and_dry_run(tiny_bids: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    dry = msqmri(tiny_bids, out, "participant", "--participant-label", "02", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "sub-02_desc-t1w_qc.json" in dry.stdout and "sub-01_ses-01" not in dry.stdout
    assert not (out / "sub-02").exists()


def test_bundled_profile_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    snakefile = find_snakefile()
    shipped = str(snakefile.parent / "profiles" / "slurm")
    assert bundled_profile(["-n", "--profile", "slurm"], snakefile) == ["-n", "--profile", shipped]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "slurm").mkdir()  # a profile directory of the user's own takes precedence
    assert bundled_profile(["--profile", "slurm"], snakefile) == ["--profile", "slurm"]
    assert bundled_profile(["--profile", "other", "--retries"], snakefile) == ["--profile", "other", "--retries"]


def test_bad_label_is_one_line(tiny_bids: Path, tmp_path: Path) -> None:
    (tiny_bids / "sub-$(x)").mkdir()
    result = msqmri(tiny_bids, tmp_path / "out", "participant", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    reason = "invalid sub- label '$(x)': BIDS labels may contain only letters and digits"
    assert result.stderr.strip() == f"msqmri: error: {tiny_bids / 'sub-$(x)'}: {reason}"


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "participant" in text and "msqmri demo" in text and "examples:" in text


def test_report_errors_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "job.log"
    job = SimpleNamespace(params=SimpleNamespace(label="sub-01 ses-01"), log=[str(log)], rule="demo")
    with pytest.raises(SystemExit) as info, report_errors(job):
        raise MsqmriInputError("x.nii.gz", "broken\nheader")
    assert info.value.code == 1
    assert capsys.readouterr().err == "msqmri: error: sub-01 ses-01: x.nii.gz: broken header\n"
    with pytest.raises(SystemExit), report_errors(job):
        raise KeyError("boom")
    err = capsys.readouterr().err
    assert err.startswith("msqmri: error: sub-01 ses-01: internal error KeyError") and "Traceback" not in err
    assert "Traceback" in log.read_text()


def test_errors_are_read_whole_from_job_logs(tmp_path: Path) -> None:
    """A job's error line is reported once, as its job log holds it, not as Snakemake's log relays it (the
    job's stderr there interleaves with Snakemake's own output); the failed jobs are those Snakemake's logger
    reported (the events msqmri's logger plugin writes), their logs relative to OUTPUT_DIR or absolute."""
    line = "msqmri: error: sub-01 ses-01: T1w.nii.gz: truncated"
    job_log = tmp_path / "logs" / "check_inputs" / "sub-01" / "ses-01" / "sub-01_ses-01.log"
    job_log.parent.mkdir(parents=True)
    job_log.write_text(line + "\n")
    runner = tmp_path / "logs" / "snakemake_participant.log"
    runner.write_text(f"{line}\n{line}Execute 1 jobs...\nmsqmri: error: unrelated\n")
    events = runner.with_suffix(".events.jsonl")
    events.write_text(
        '{"event": "progress", "done": 1, "total": 3}\n'
        '{"event": "job_error", "rule": "check_inputs", '
        '"logs": ["logs/check_inputs/sub-01/ses-01/sub-01_ses-01.log"]}\n'
    )
    assert failed_job_logs(events) == [job_log]
    assert collect_errors(failed_job_logs(events)) == [line]
