"""The workflow runs through the real SLURM executor (profiles/slurm) on a one-node cluster.

The cluster is started by scripts/slurm-cluster.sh in a private state dir for this module and
stopped afterwards, whatever the tests did. Further tests reuse `slurm_cluster` and
`run_snakemake_on_slurm`, e.g.

    def test_smoke_on_slurm(slurm_cluster, tmp_path):
        run_snakemake_on_slurm(workdir, ["--config", "profile=smoke"], slurm_cluster.env)
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SCRIPT = REPO / "scripts" / "slurm-cluster.sh"
SLURM_PROFILE = REPO / "profiles" / "slurm"
FIXTURE_WF = Path(__file__).resolve().parent / "fixtures" / "slurm_wf"

SNAKEMAKE_TIMEOUT_S = 240


@dataclass
class SlurmCluster:
    state_dir: Path
    conf: Path
    env: dict[str, str]

    def scontrol_job(self, job_id: str) -> dict[str, str]:
        """Fields of `scontrol show job`; finished jobs stay visible for MinJobAge (300 s)."""
        out = subprocess.run(
            ["scontrol", "show", "job", "-o", job_id],
            env=self.env, capture_output=True, text=True, timeout=30, check=True,
        ).stdout
        return dict(f.split("=", 1) for f in out.split() if "=" in f)


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root to start munged/slurmctld/slurmd"
    # Installing packages from a test run is opt-in; the script does it when asked to.
    if shutil.which("sbatch") is None and os.environ.get("DFL_SLURM_INSTALL") != "1":
        return ("sbatch not on PATH (apt-get install slurm-wlm munge, or set DFL_SLURM_INSTALL=1 "
                "to let scripts/slurm-cluster.sh install it)")
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _daemon_pids(state_dir: Path) -> list[int]:
    pidfiles = ["munge/munged.pid", "run/slurmctld.pid", "run/slurmd.pid"]
    return [int((state_dir / f).read_text()) for f in pidfiles if (state_dir / f).is_file()]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def slurm_cluster():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    # Not pytest's tmp_path: munged runs as user munge and cannot enter root's 0700 pytest dirs.
    state_dir = Path(tempfile.mkdtemp(prefix="dfl-slurm-test-", dir="/tmp"))
    state_dir.chmod(0o755)
    # Own ports, so a cluster someone started by hand on 6817/6818 does not clash with this one.
    script_env = {**os.environ,
                  "DFL_SLURM_CTLD_PORT": str(_free_port()),
                  "DFL_SLURM_D_PORT": str(_free_port())}
    pids: list[int] = []
    try:
        started = subprocess.run(
            ["bash", str(CLUSTER_SCRIPT), "start", str(state_dir)],
            env=script_env, capture_output=True, text=True, timeout=300,
        )
        pids = _daemon_pids(state_dir)
        if started.returncode != 0:
            pytest.fail(f"slurm-cluster.sh start failed:\n{started.stderr[-4000:]}")
        match = re.search(r"^export SLURM_CONF=(\S+)$", started.stdout, re.M)
        assert match, f"no SLURM_CONF line in: {started.stdout!r}"
        conf = Path(match.group(1))
        yield SlurmCluster(state_dir, conf, {**os.environ, "SLURM_CONF": str(conf)})
    finally:
        pids = pids or _daemon_pids(state_dir)
        stopped = subprocess.run(
            ["bash", str(CLUSTER_SCRIPT), "stop", str(state_dir)],
            env=script_env, capture_output=True, text=True, timeout=120,
        )
        left = [p for p in pids if _pid_alive(p)]
        if stopped.returncode == 0 and not left:
            shutil.rmtree(state_dir, ignore_errors=True)
        else:
            # Keep the logs of a cluster that would not stop; they explain why.
            pytest.fail(f"slurm-cluster.sh stop rc={stopped.returncode}, still alive: {left}, "
                        f"state kept in {state_dir}:\n{stopped.stderr[-2000:]}")


def _snakemake_command() -> list[str]:
    exe = Path(sys.executable).with_name("snakemake")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "snakemake"]


def _slurm_logs_tail(workdir: Path, limit: int = 4000) -> str:
    logs = sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    text = "".join(f"--- {p.relative_to(workdir)}\n{p.read_text(errors='replace')[-1500:]}"
                   for p in logs)
    return text[-limit:]


def run_snakemake_on_slurm(workdir: Path, args: list[str], env: dict[str, str], *,
                           timeout: float = SNAKEMAKE_TIMEOUT_S,
                           check: bool = True) -> subprocess.CompletedProcess:
    """Run `snakemake --profile profiles/slurm *args` in workdir against the cluster in env.

    With check, a non-zero exit fails the test and shows Snakemake's output and the SLURM job
    logs. On timeout Snakemake first gets SIGINT, so it can scancel its jobs, then SIGKILL.
    """
    cmd = [*_snakemake_command(), "--profile", str(SLURM_PROFILE), *args]
    # Jobs run `python -m snakemake` from the venv; keep its bin first on PATH inside them too.
    run_env = {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}
    proc = subprocess.Popen(cmd, cwd=workdir, env=run_env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        pytest.fail(f"snakemake on SLURM did not finish in {timeout} s: {' '.join(cmd)}\n"
                    f"{out[-6000:]}\n{_slurm_logs_tail(workdir)}")
    result = subprocess.CompletedProcess(cmd, proc.returncode, out, None)
    if check and result.returncode != 0:
        pytest.fail(f"snakemake on SLURM exited {result.returncode}: {' '.join(cmd)}\n"
                    f"{out[-6000:]}\n{_slurm_logs_tail(workdir)}")
    return result


def test_fixture_workflow_runs_through_slurm(slurm_cluster, tmp_path):
    workdir = tmp_path / "wf"
    shutil.copytree(FIXTURE_WF, workdir)

    result = run_snakemake_on_slurm(workdir, [], slurm_cluster.env)

    assert result.returncode == 0
    # The executor itself reports each sbatch submission.
    assert len(re.findall(r"submitted with SLURM jobid \d+", result.stdout)) == 3, result.stdout

    parts = [workdir / "results" / f"part_{i}.txt" for i in (1, 2)]
    summary = workdir / "results" / "summary.txt"
    for path in [*parts, summary]:
        assert path.is_file(), f"missing output {path}"

    def job_ids(path: Path) -> list[str]:
        return re.findall(r"^slurm_job_id=(\S*) ", path.read_text(), re.M)

    part_ids = [job_ids(p)[0] for p in parts]
    summary_id = job_ids(summary)[-1]
    # $SLURM_JOB_ID is empty unless the shell command ran inside a SLURM allocation.
    assert all(i.isdigit() for i in [*part_ids, summary_id]), summary.read_text()
    assert len({*part_ids, summary_id}) == 3, "every rule instance must be its own SLURM job"

    # The rule's threads and mem_mb reached sbatch (--cpus-per-task, --mem).
    for job_id in part_ids:
        job = slurm_cluster.scontrol_job(job_id)
        assert job["JobState"] == "COMPLETED", job
        assert job["NumCPUs"] == "1", job
        assert job["MinMemoryNode"] == "300M", job
        assert job["TimeLimit"] == "00:05:00", job
    assert slurm_cluster.scontrol_job(summary_id)["MinMemoryNode"] == "200M"


def test_smoke_profile_runs_through_slurm(slurm_cluster, tmp_path):
    """The real Snakefile, smoke profile, one family end to end: each run is its own SLURM job."""
    workdir = tmp_path / "smoke"
    workdir.mkdir()
    data = REPO / "data"
    # The target goes before --config, which takes every following word as a key=value pair.
    args = ["-s", str(REPO / "Snakefile"), "results/tables/autoencoder.csv", "--config", "profile=smoke",
            f"data_dir={data}"]
    result = run_snakemake_on_slurm(workdir, args, slurm_cluster.env, timeout=600)
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", result.stdout)
    import yaml
    variants = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["families"]["autoencoder"]["variants"]
    assert len(submitted) == len(variants), result.stdout[-3000:]
    for variant in variants:
        assert (workdir / "results" / "runs" / "autoencoder" / variant / "seed0" / "metrics.json").is_file()
    assert (workdir / "results" / "tables" / "autoencoder.csv").is_file()
    for job_id in submitted:
        job = slurm_cluster.scontrol_job(job_id)
        assert job["JobState"] == "COMPLETED" and job["NumCPUs"] == "1", job
