"""A real one-node Slurm cluster on this machine, for tests: munged, slurmctld and slurmd.

The node has the machine's CPUs and a `gpu` GRES backed by /dev/null, so Slurm hands
`CUDA_VISIBLE_DEVICES` to jobs that ask for a GPU. Accounting is off (use the executor
plugin's `--slurm-status-command squeue`). Every daemon runs from a private folder with its
own munge key and socket, and is stopped by its process id.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
#: Where Slurm's client commands look when SLURM_CONF is unset (the executor plugin's job
#: steps unset it): the test links its configuration there while the cluster runs.
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")


class ClusterUnavailable(RuntimeError):
    """Slurm cannot be installed or started here (the reason is the message)."""


def ensure_installed() -> None:
    """Install Debian's slurm-wlm and munge when missing (needs root and the package registry)."""
    if all(shutil.which(d) or Path(f"/usr/sbin/{d}").exists() for d in DAEMONS):
        return
    if os.geteuid() != 0:
        raise ClusterUnavailable("slurm-wlm/munge are not installed and installing them needs root")
    if shutil.which("apt-get") is None:
        raise ClusterUnavailable("slurm-wlm/munge are not installed and there is no apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    out = subprocess.run(["apt-get", "install", "-y", "-q", "slurm-wlm", "munge"], capture_output=True, text=True,
                         env=env, timeout=600)
    if out.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, timeout=600)
        out = subprocess.run(["apt-get", "install", "-y", "-q", "slurm-wlm", "munge"], capture_output=True,
                             text=True, env=env, timeout=600)
    if out.returncode != 0:
        raise ClusterUnavailable(f"apt-get install slurm-wlm munge failed: {out.stderr.strip()[-500:]}")


def _stale_test_link() -> bool:
    """Whether ``/etc/slurm/slurm.conf`` is a link that an earlier test cluster left behind: a
    dangling link, or one to a config of ours (``ClusterName=metamersci``) whose slurmctld is no
    longer running (a run killed before its teardown)."""
    if not SYSTEM_CONF.is_symlink():
        return False
    target = Path(os.readlink(SYSTEM_CONF))
    if not target.exists():
        return True
    try:
        if not target.read_text().startswith("ClusterName=metamersci\n"):
            return False
    except OSError:
        return False
    try:
        pid = int((target.parent / "slurmctld.pid").read_text())
    except (OSError, ValueError):
        return True  # ours, and its controller never wrote a pid file
    return not Path(f"/proc/{pid}").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    root: Path
    conf: Path
    pids: dict[str, int] = field(default_factory=dict)
    linked_conf: bool = False
    children: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """The environment in which Slurm's client commands talk to this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *cmd: str) -> str:
        return subprocess.run(cmd, capture_output=True, text=True, env=self.env, check=True).stdout

    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld still knows, as ``scontrol show job -o`` fields."""
        out = self.run("scontrol", "show", "job", "-o")
        jobs = []
        for line in out.splitlines():
            if "=" in line:
                jobs.append(dict(item.split("=", 1) for item in line.split() if "=" in item))
        return jobs

    def stop(self) -> None:
        if self.linked_conf and SYSTEM_CONF.is_symlink() and SYSTEM_CONF.resolve() == self.conf.resolve():
            SYSTEM_CONF.unlink()
        for name in reversed(list(self.pids)):
            pid = self.pids[name]
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            if name in self.children:  # our child: wait for it, so that it is reaped
                try:
                    self.children[name].wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.children[name].kill()
                    self.children[name].wait()
                continue
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)


def start(root: Path, timeout: float = 60) -> Cluster:
    """Start munged, slurmctld and slurmd for a one-node cluster under ``root``."""
    ensure_installed()
    if os.geteuid() != 0:
        raise ClusterUnavailable("starting slurmd needs root")
    host = socket.gethostname()
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    for sub in ("state", "spool", "munge"):
        (root / sub).mkdir(exist_ok=True)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    os.chmod(key, 0o600)
    sock = root / "munge" / "munge.socket"
    cpus = os.cpu_count() or 1
    mem = max(1000, int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20) - 2000)
    conf = root / "slurm.conf"
    conf.write_text(f"""ClusterName=metamersci
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={sock}
CryptoType=crypto/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
ReturnToService=2
SchedulerType=sched/backfill
MinJobAge=3600
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
NodeName={host} CPUs={cpus} RealMemory={mem} Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")
    (root / "gres.conf").write_text(f"NodeName={host} Name=gpu File=/dev/null\n")
    cluster = Cluster(root, conf)
    if _stale_test_link():
        SYSTEM_CONF.unlink()  # left by an earlier test cluster that was killed
    if SYSTEM_CONF.exists() or SYSTEM_CONF.is_symlink():
        raise ClusterUnavailable(f"a Slurm configuration already exists at {SYSTEM_CONF}; the test leaves it alone")
    SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
    SYSTEM_CONF.symlink_to(conf)
    cluster.linked_conf = True
    munged = shutil.which("munged") or "/usr/sbin/munged"
    out = subprocess.run([munged, "--force", f"--socket={sock}", f"--key-file={key}",
                          f"--pid-file={root}/munge/munged.pid", f"--log-file={root}/munge/munged.log",
                          f"--seed-file={root}/munge/seed"], capture_output=True, text=True)
    if out.returncode != 0:
        cluster.stop()
        raise ClusterUnavailable(f"munged did not start: {out.stderr.strip()}")
    cluster.pids["munged"] = int((root / "munge" / "munged.pid").read_text())
    try:
        for daemon in ("slurmctld", "slurmd"):
            exe = shutil.which(daemon) or f"/usr/sbin/{daemon}"
            log = open(root / f"{daemon}.out", "w")
            proc = subprocess.Popen([exe, "-D", "-f", str(conf)], stdout=log, stderr=subprocess.STDOUT,
                                    env=cluster.env, start_new_session=True)
            cluster.pids[daemon] = proc.pid
            cluster.children[daemon] = proc
            time.sleep(1)
        deadline = time.time() + timeout
        while time.time() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=cluster.env)
            if state.returncode == 0 and state.stdout.strip() == "idle":
                return cluster
            time.sleep(1)
        logs = "".join((root / f).read_text()[-800:] for f in ("slurmctld.log", "slurmd.log") if (root / f).exists())
        raise ClusterUnavailable(f"the Slurm node did not become idle in {timeout:.0f} s: {logs}")
    except BaseException:
        cluster.stop()
        raise
