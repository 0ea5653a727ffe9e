"""Tensor fit speed and memory: msqmri (dipy WLS, chunked) vs MRtrix3 dwi2tensor + tensor2metric.

    python benchmarks/dti.py [--workdir DIR] [--threads 2] [--repeats 3] [--no-motion]

Builds (or reuses) a 96x96x60x65 phantom DWI series (one b=0, 64 directions at b=1000, 2.5 mm) and
a b=0 brain mask, then runs each tool as its own process on the same files, the same mask and the
same number of threads: wall time of the whole command (read, fit, write FA and MD; for msqmri this
includes starting Python and importing dipy), the fit alone (msqmri's tensor fit; MRtrix3's
dwi2tensor), and the peak resident memory of the process (sampled). The last
columns compare the maps: median |FA difference| and median relative MD difference.

Then motion correction of a 2.5 mm phantom series (2 b=0 + 30 directions) with 2 degrees of random
head rotation per volume: msqmri's (antspyx rigid to the mean b=0) against dipy's
``register_dwi_series`` (centre of mass, translation, rigid), time and rotation error against the
simulated motion.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import psutil

SHAPE = (96, 96, 60)


def build(workdir: Path) -> Path:
    """The benchmark series, mask and gradient files in ``workdir`` (built once)."""
    series = workdir / "dwi.nii.gz"
    if series.is_file():
        return series
    from msqmri.dwi import preprocessing as dwi
    from msqmri.phantom import CohortSpec, generate_cohort

    spec = CohortSpec(
        n_subjects=1,
        n_sessions=1,
        resolution=2.5,
        modalities=("dwi",),
        n_directions=64,
        n_b0=1,
        lesions=False,
        orientations=("LAS",),
        seed=5,
    )
    with tempfile.TemporaryDirectory() as tmp:
        stem = generate_cohort(tmp, spec) / "sub-01" / "ses-01" / "dwi" / "sub-01_ses-01_dwi"
        img = nib.load(f"{stem}.nii.gz")
        data = np.asarray(img.dataobj, dtype=np.float32)
        shutil.copyfile(f"{stem}.bval", workdir / "dwi.bval")
        shutil.copyfile(f"{stem}.bvec", workdir / "dwi.bvec")
    fitted = np.zeros((*SHAPE, data.shape[3]), dtype=np.float32)  # centre crop/pad to SHAPE
    src = [
        slice(max(0, (n - m) // 2), max(0, (n - m) // 2) + min(n, m)) for n, m in zip(data.shape, SHAPE, strict=False)
    ]
    dst = [
        slice(max(0, (m - n) // 2), max(0, (m - n) // 2) + min(n, m)) for n, m in zip(data.shape, SHAPE, strict=False)
    ]
    fitted[tuple(dst)] = data[tuple(src)]
    gradients = dwi.read_gradients(workdir / "dwi.bval", workdir / "dwi.bvec", data.shape[3], img.affine)
    mask = dwi.b0_brain_mask(dwi.mean_b0(fitted, gradients))
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), img.affine), str(workdir / "mask.nii.gz"))
    nib.save(nib.Nifti1Image(fitted, img.affine), str(series))
    return series


def measure(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Wall time (s), peak RSS (MB, sampled every 5 ms) and stdout of a command run as a child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    child, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            peak = max(peak, child.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.005)
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{command[0]} failed: {err.strip()[-500:]}")
    return seconds, peak / 2**20, out


def ours(workdir: Path, threads: int) -> tuple[float, float, float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    seconds, peak, out = measure([sys.executable, __file__, "--worker", str(workdir), "--threads", str(threads)], env)
    return seconds, float(out.split()[-1]), peak


def mrtrix(workdir: Path, threads: int) -> tuple[float, float, float]:
    n = str(threads)
    fit, peak_fit, _ = measure(
        [
            "dwi2tensor",
            "-quiet",
            "-force",
            "-nthreads",
            n,
            "-fslgrad",
            str(workdir / "dwi.bvec"),
            str(workdir / "dwi.bval"),
            "-mask",
            str(workdir / "mask.nii.gz"),
            str(workdir / "dwi.nii.gz"),
            str(workdir / "tensor.mif"),
        ]
    )
    metric, peak_metric, _ = measure(
        [
            "tensor2metric",
            "-quiet",
            "-force",
            "-nthreads",
            n,
            "-mask",
            str(workdir / "mask.nii.gz"),
            "-fa",
            str(workdir / "mrtrix_fa.nii.gz"),
            "-adc",
            str(workdir / "mrtrix_md.nii.gz"),
            str(workdir / "tensor.mif"),
        ]
    )
    return fit + metric, fit, max(peak_fit, peak_metric)


def worker(workdir: Path, threads: int) -> None:
    """Read the series, fit, write FA and MD; print the fit time last."""
    from msqmri.dwi import preprocessing as dwi
    from msqmri.dwi import tensor as dti

    img = nib.load(str(workdir / "dwi.nii.gz"))
    data = np.asarray(img.dataobj, dtype=np.float32)
    gradients = dwi.read_gradients(workdir / "dwi.bval", workdir / "dwi.bvec", data.shape[3], img.affine)
    mask = np.asarray(nib.load(str(workdir / "mask.nii.gz")).dataobj) > 0
    start = time.perf_counter()
    maps = dti.fit_tensor(data, gradients, mask, threads=threads)
    seconds = time.perf_counter() - start
    for name in ("fa", "md"):
        nib.save(nib.Nifti1Image(getattr(maps, name), img.affine), str(workdir / f"msqmri_{name}.nii.gz"))
    print(f"{seconds:.3f}")


def motion(workdir: Path, threads: int) -> None:
    """Motion correction, msqmri vs dipy, on a phantom series with known per-volume motion."""
    import json
    import logging

    from dipy.align import register_dwi_series
    from scipy.spatial.transform import Rotation

    from msqmri.dwi import preprocessing as dwi
    from msqmri.phantom import CohortSpec, generate_cohort

    root = workdir / "motion"
    if not root.is_dir():
        generate_cohort(
            root,
            CohortSpec(
                n_subjects=1,
                n_sessions=1,
                resolution=2.5,
                modalities=("dwi",),
                lesions=False,
                dwi_motion_deg=2.0,
                seed=7,
            ),
        )
    stem = root / "sub-01" / "ses-01" / "dwi" / "sub-01_ses-01_dwi"
    truth = root / "sourcedata/ground_truth/sub-01/ses-01/sub-01_ses-01_space-dwi_desc-motion_xfm.json"
    simulated = Rotation.from_matrix(np.array(json.loads(truth.read_text())["reference_to_volume"])[:, :3, :3])
    img = nib.load(f"{stem}.nii.gz")
    data = np.asarray(img.dataobj, dtype=np.float32)
    gradients = dwi.read_gradients(f"{stem}.bval", f"{stem}.bvec", data.shape[3], img.affine)
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(threads)
    logging.getLogger("dipy").setLevel(logging.ERROR)
    start = time.perf_counter()
    ours = dwi.motion_correct(data, img.affine, gradients).transforms
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    _, theirs = register_dwi_series(
        data, gradients.table(), affine=img.affine, pipeline=["center_of_mass", "translation", "rigid"]
    )
    dipy_s = time.perf_counter() - start
    print(
        f"\nmotion correction, {data.shape} series, 2 degrees per volume ({threads} threads for ANTs; "
        f"dipy is single-threaded)"
    )
    print(f"{'tool':36s} {'s/volume':>9s} {'median err deg':>15s} {'max err deg':>12s}")
    for name, seconds, transforms in (
        ("msqmri (antspyx rigid, mean b=0)", ours_s, ours),
        ("dipy register_dwi_series", dipy_s, np.moveaxis(theirs, -1, 0)),
    ):
        error = np.degrees((Rotation.from_matrix(transforms[:, :3, :3]) * simulated.inv()).magnitude())
        print(f"{name:36s} {seconds / data.shape[3]:9.2f} {np.median(error):15.3f} {error.max():12.3f}")
    print(f"ratio dipy / msqmri time: {dipy_s / ours_s:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-motion", action="store_true", help="skip the motion-correction comparison")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.threads)
        return
    if not shutil.which("dwi2tensor"):
        raise SystemExit("MRtrix3 not found: apt-get install mrtrix3")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="msqmri-dti-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    series = build(workdir)
    mask = np.asarray(nib.load(str(workdir / "mask.nii.gz")).dataobj) > 0
    print(
        f"series {nib.load(str(series)).shape}, {int(mask.sum())} brain voxels, {args.threads} threads, "
        f"best of {args.repeats}"
    )
    results = {}
    for name, run in (("msqmri (dipy WLS)", ours), ("MRtrix3 dwi2tensor+tensor2metric", mrtrix)):
        runs = [run(workdir, args.threads) for _ in range(args.repeats)]
        results[name] = min(runs, key=lambda r: r[0])
    fa = {k: np.asarray(nib.load(str(workdir / f"{k}_fa.nii.gz")).dataobj)[mask] for k in ("msqmri", "mrtrix")}
    md = {k: np.asarray(nib.load(str(workdir / f"{k}_md.nii.gz")).dataobj)[mask] for k in ("msqmri", "mrtrix")}
    print(f"{'tool':36s} {'total s':>8s} {'fit s':>7s} {'peak MB':>8s}")
    for name, (total, fit, peak) in results.items():
        print(f"{name:36s} {total:8.2f} {fit:7.2f} {peak:8.0f}")
    (ours_total, ours_fit, ours_peak), (mr_total, mr_fit, mr_peak) = results.values()
    print(
        f"ratio msqmri / MRtrix3: total {ours_total / mr_total:.2f}x, fit {ours_fit / mr_fit:.2f}x, "
        f"peak memory {ours_peak / mr_peak:.2f}x"
    )
    print(
        f"agreement: median |dFA| {np.median(np.abs(fa['msqmri'] - fa['mrtrix'])):.4f}, "
        f"median |dMD|/MD {np.median(np.abs(md['msqmri'] / md['mrtrix'] - 1)):.4f}"
    )
    if not args.no_motion:
        motion(workdir, args.threads)


if __name__ == "__main__":
    main()
