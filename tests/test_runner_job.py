"""The runner's conversation with its Job, offline: `redis-harness run --platform kind|kubernetes`
reaches a clear "no cluster" sentence (exit 2, nothing created) where there is none; the Job's log
is passed on until the gate says it finished; the report directory comes back over a tar stream,
and nothing in that stream lands outside reports/; inside a pod with no kubeconfig named, the same
command runs the suites there."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from harness import cli, gate
from harness.platforms.kubernetes import incluster, runner


def tar_of(files: dict[str, bytes], extra: list[tarfile.TarInfo] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info)
    return buf.getvalue()


REPORT = {"kind": "run", "outcome": "fail", "suites": [], "counts": {}}
POD_TAR = tar_of(
    {
        "./20260101T000000Z-run/report.json": json.dumps(REPORT).encode(),
        "./20260101T000000Z-run/junit.xml": b"<testsuites/>",
        "./20260101T000000Z-run/suites/failover/report.json": b"{}",
        "./exit-code": b"1\n",
    }
)


# --- no cluster: one sentence, exit 2, nothing created ------------------------------------------
def test_run_on_kubernetes_without_a_cluster_says_so_and_creates_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    reports = tmp_path / "reports"
    argv = ["run", "--platform", "kubernetes", "--kubeconfig", str(tmp_path / "no-such-kubeconfig")]
    code = cli.main([*argv, "--image", "redis-harness:x", "--reports", str(reports)])
    err = capsys.readouterr().err
    assert code == 2
    assert "no Kubernetes cluster is reachable" in err
    assert len([line for line in err.strip().splitlines() if line.startswith("error:")]) == 1
    assert not reports.exists()


def test_run_on_kubernetes_without_an_image_names_what_to_do(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    code = cli.main(["run", "--platform", "kubernetes", "--reports", str(tmp_path / "r")])
    assert code == 2
    assert "name it with --image" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_image_is_refused_on_the_local_platform(capsys):
    assert cli.main(["run", "--platform", "local", "--image", "redis-harness:x"]) == 2
    assert "--image is for the runner Job" in capsys.readouterr().err


def test_run_on_kubernetes_from_another_process_says_no_cluster():
    """The installed command, as CI calls it."""
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--platform", "kubernetes", "--kubeconfig", "/nonexistent", "--image", "x"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": "/tmp"},
    )
    assert proc.returncode == 2, proc.stderr
    assert "no Kubernetes cluster is reachable" in proc.stderr


def test_kubectl_without_a_cluster_is_no_cluster(tmp_path):
    with pytest.raises(runner.NoCluster, match="no Kubernetes cluster is reachable"):
        runner.Kubectl(kubeconfig=str(tmp_path / "missing")).reachable()


# --- in the Job's pod: the suites run here -------------------------------------------------------
def test_in_cluster_needs_a_pod_and_no_cluster_named(tmp_path, monkeypatch):
    token = tmp_path / "token"
    token.write_text("t")
    monkeypatch.setattr(runner, "SERVICE_ACCOUNT_TOKEN", token)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    assert runner.in_cluster()
    assert incluster.runs_as_job("kubernetes") is False
    assert not runner.in_cluster(kubeconfig="/k")
    assert not runner.in_cluster(context="kind-x")
    assert incluster.runs_as_job("kubernetes", {"kubeconfig": "/k"}) is True
    monkeypatch.setenv("KUBECONFIG", "/k")
    assert not runner.in_cluster()
    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    assert not runner.in_cluster()
    assert incluster.runs_as_job("kind") and not incluster.runs_as_job("local")


# --- the log and the report ------------------------------------------------------------------------
def test_log_lines_pass_on_until_the_gate_finished():
    said: list[str] = []
    lines = ["collecting\n", "scenarios/test_failover.py::test_x PASSED\n", f"{runner.DONE}1\n", "never read\n"]
    assert runner.stream_until_done(lambda: iter(lines), said.append) == 1
    assert said == ["collecting", "scenarios/test_failover.py::test_x PASSED"]


def test_a_log_that_ends_before_the_gate_finished_has_no_exit_code():
    assert runner.stream_until_done(lambda: iter(["Traceback\n"]), lambda _l: None) is None


def test_reports_come_back_under_reports_and_name_the_run(tmp_path):
    runs = runner.extract_reports(POD_TAR, tmp_path)
    assert runs == [(tmp_path / "20260101T000000Z-run").resolve()]
    assert json.loads((runs[0] / "report.json").read_text())["outcome"] == "fail"
    assert (runs[0] / "suites" / "failover" / "report.json").exists()


def test_nothing_in_the_stream_lands_outside_reports(tmp_path):
    link = tarfile.TarInfo("./run/evil-link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    data = tar_of({"./run/report.json": b"{}", "../escaped": b"x", "./.collected": b""}, [link])
    reports = tmp_path / "reports"
    with pytest.raises(tarfile.OutsideDestinationError):
        runner.extract_reports(data, reports)
    assert not (tmp_path / "escaped").exists()
    data = tar_of({"./run/report.json": b"{}", "./.collected": b""}, [link])
    assert runner.extract_reports(data, reports) == [(reports / "run").resolve()]
    assert not (reports / "run" / "evil-link").exists() and not (reports / ".collected").exists()


class FakeKubectl(runner.Kubectl):
    """kubectl as a recorded script: the Job's pod runs, its log says the gate finished with exit
    code 1, its /reports is POD_TAR."""

    def __init__(
        self, log: list[str], phases: tuple[str, ...] = ("Failed",), namespaces: tuple[str, ...] = runner.PROBE_NAMESPACES
    ):
        super().__init__()
        self.namespaces = namespaces
        self.phases = [*phases, "Failed"]
        self.opened = 0
        self.calls: list[tuple[str, ...]] = []
        self.applied: list[str] = []
        self.deleted: list[str] = []
        self.log = log
        self.rolls_out = True

    def argv(self, *args: str) -> list[str]:
        if "logs" in args:
            self.opened += 1
            chunk = self.log[self.opened - 1] if self.opened <= len(self.log) else ""
            return [sys.executable, "-c", f"import sys; sys.stdout.write({chunk!r})"]
        return ["true"]

    def run(self, *args, stdin=None, timeout=120, binary=False):
        self.calls.append(args)
        out: str | bytes = b"" if binary else ""
        if args[2:4] == ("get", "pods"):
            out = json.dumps({"items": [{"metadata": {"name": "redis-harness-runner-abc"}, "status": {"phase": "Running"}}]})
        elif args[2:4] == ("get", "pod"):
            self.phases, out = self.phases[1:], self.phases[0]
        elif "tar" in args:
            out = POD_TAR
        if args[:1] == ("apply",):
            self.applied += [o["kind"] for o in json.loads(stdin)["items"]]
        if args[:1] == ("delete",):
            self.deleted += [o["kind"] for o in json.loads(stdin)["items"]]
        if args[:2] == ("get", "namespace"):
            return subprocess.CompletedProcess(args, 0 if args[2] in self.namespaces else 1, "", "")
        if "rollout" in args:
            return subprocess.CompletedProcess(args, 0 if self.rolls_out else 1, "", "" if self.rolls_out else "error: timed out waiting")
        return subprocess.CompletedProcess(args, 0, out, b"" if binary else "")


def test_the_job_conversation_brings_the_report_back_and_cleans_up(tmp_path):
    kubectl = FakeKubectl([f"pytest starts\n{runner.DONE}1\n"])
    said: list[str] = []
    code, run_dir = runner.run_job(kubectl, "redis", "img:1", runner.gate_args("kind"), tmp_path, said.append)
    assert code == 1 and run_dir == (tmp_path / "20260101T000000Z-run").resolve()
    assert "pytest starts" in said
    assert "Job" in kubectl.applied and "ClusterRoleBinding" in kubectl.applied
    assert sorted(kubectl.deleted) == sorted(["Job", *kubectl.applied])  # a stale Job first, then everything
    touched = [c for c in kubectl.calls if "touch" in c]
    assert touched and touched[0][-1] == "/reports/.collected"


def test_probe_namespaces_that_are_not_there_are_made_for_the_run_and_removed(tmp_path):
    kubectl = FakeKubectl([f"{runner.DONE}0\n"], namespaces=("monitoring",))
    runner.run_job(kubectl, "redis", "img:1", runner.gate_args("kind"), tmp_path, lambda _l: None)
    assert kubectl.applied.count("Namespace") == 1 and kubectl.deleted.count("Namespace") == 1
    kubectl = FakeKubectl([f"{runner.DONE}0\n"])
    runner.run_job(kubectl, "redis", "img:1", runner.gate_args("kind"), tmp_path, lambda _l: None)
    assert "Namespace" not in kubectl.applied and "Namespace" not in kubectl.deleted, "one that was there is left"


def test_a_log_stream_that_drops_while_the_pod_runs_is_reopened(tmp_path):
    kubectl = FakeKubectl(
        ["pytest starts\n", "scenarios/test_x.py::test_y PASSED\n", f"{runner.DONE}0\n"], ("Running", "Running")
    )
    said: list[str] = []
    code, _run = runner.run_job(kubectl, "redis", "img:1", runner.gate_args("kind"), tmp_path, said.append)
    assert code == 0 and kubectl.opened == 3
    assert said[-2:] == ["pytest starts", "scenarios/test_x.py::test_y PASSED"]


def test_a_job_that_dies_before_the_gate_finished_is_an_error_and_is_cleaned_up(tmp_path):
    kubectl = FakeKubectl(["ImportError: no module named harness\n"])
    with pytest.raises(runner.HarnessError, match="ended before the gate finished"):
        runner.run_job(kubectl, "redis", "img:1", runner.gate_args("kind"), tmp_path, lambda _l: None)
    assert "Job" in kubectl.deleted and "ClusterRoleBinding" in kubectl.deleted
    assert not list(Path(tmp_path).iterdir())


def test_the_gate_in_a_pod_logs_one_line_per_test(tmp_path):
    """In the Job's pod the output is a log, not a terminal: each test's result is a line of it."""
    lines: list[str] = []
    result = gate.run_gate("local", "kind", ["static"], reports=tmp_path, echo=lines.append)
    assert result.outcome == "pass", result.report
    assert lines and all(line.startswith("scenarios/test_static.py::") and line.endswith(" PASSED") for line in lines)
    assert len(lines) == result.report["counts"]["passed"]


# --- bench in the cluster ---------------------------------------------------------------------
def test_bench_on_kubernetes_without_a_cluster_says_so_and_creates_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    reports = tmp_path / "reports"
    argv = ["bench", "--platform", "kubernetes", "--kubeconfig", str(tmp_path / "none"), "--image", "x", "--workers", "2"]
    assert cli.main([*argv, "--reports", str(reports)]) == 2
    err = capsys.readouterr().err
    assert "no Kubernetes cluster is reachable" in err and not reports.exists()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--platform", "local", "--workers", "2"], "--workers is for kind and kubernetes"),
        (["--platform", "kubernetes", "--workers", "-1"], "--workers must be between 0 and 64"),
        (["--platform", "local", "--image", "x"], "--image is for the runner Job"),
        (["--platform", "kubernetes", "--kind-bin", "/k"], "takes no option 'kind_bin'"),
    ],
)
def test_bench_refuses_options_of_another_platform_in_one_sentence(argv, says, capsys, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert cli.main(["bench", *argv]) == 2
    err = capsys.readouterr().err
    assert says in err and len([line for line in err.splitlines() if line.startswith("error:")]) == 1


class RunningPlatform:
    """What incluster.run asks of a platform whose reference is (or is not) up."""

    kubeconfig = context = None

    def __init__(self, up: bool):
        self.running = up
        self.stood_up = self.torn_down = False

    def pods(self):
        from harness.platforms.base import Pod

        return [Pod("redis-cluster-0", "10.0.0.1", {}, "worker", running=self.running)]

    def up(self):
        self.stood_up = True

    def down(self):
        self.torn_down = True


class ReachableKubectl(FakeKubectl):
    def reachable(self) -> None:
        pass


def test_a_bench_in_the_cluster_brings_its_workers_and_removes_them_and_the_agent(tmp_path, monkeypatch):
    from harness.platforms import registry

    platform, kubectl = RunningPlatform(up=True), ReachableKubectl([f"{runner.DONE}0\n"])
    monkeypatch.setattr(registry, "create", lambda *a, **k: platform)
    monkeypatch.setattr(runner, "Kubectl", lambda *a, **k: kubectl)
    workers = lambda namespace, image: runner.loadgen_objects(namespace, image, 2)  # noqa: E731
    code, _run = incluster.run("kubernetes", "kind", "img:1", ["bench"], tmp_path, {}, lambda _l: None, stand_up=False, extra=workers)
    assert code == 0 and not platform.stood_up and not platform.torn_down, "a bench finds the reference up and leaves it"
    assert "Deployment" in kubectl.applied and "DaemonSet" in kubectl.applied
    assert kubectl.deleted.count("Deployment") == 1 and "DaemonSet" in kubectl.deleted


def test_the_agent_goes_in_with_the_runs_image_and_the_job_waits_for_its_rollout(tmp_path, monkeypatch):
    from harness.platforms import registry

    platform, kubectl = RunningPlatform(up=True), ReachableKubectl([f"{runner.DONE}0\n"])
    monkeypatch.setattr(registry, "create", lambda *a, **k: platform)
    monkeypatch.setattr(runner, "Kubectl", lambda *a, **k: kubectl)
    applies, original = [], kubectl.apply
    monkeypatch.setattr(kubectl, "apply", lambda objects: applies.append(objects) or original(objects))
    code, _run = incluster.run("kubernetes", "kind", "img:1", ["run"], tmp_path, {}, lambda _l: None, stand_up=False)
    assert code == 0
    images = {c["image"] for o in applies[0] if o["kind"] == "DaemonSet" for c in o["spec"]["template"]["spec"]["containers"]}
    assert images == {"img:1"}, images
    rollout = next(i for i, c in enumerate(kubectl.calls) if "rollout" in c)
    job = next(i for i, c in enumerate(kubectl.calls) if c[:1] == ("apply",) and i > rollout)
    assert kubectl.calls[rollout][-2].startswith("daemonset/") and rollout < job, kubectl.calls


def test_an_agent_that_does_not_roll_out_stops_the_run_before_its_job_and_is_removed(tmp_path, monkeypatch):
    from harness.platforms import registry

    platform, kubectl = RunningPlatform(up=True), ReachableKubectl([])
    kubectl.rolls_out = False
    monkeypatch.setattr(registry, "create", lambda *a, **k: platform)
    monkeypatch.setattr(runner, "Kubectl", lambda *a, **k: kubectl)
    with pytest.raises(runner.HarnessError, match="did not roll out within .*timed out waiting"):
        incluster.run("kubernetes", "kind", "img:1", ["run"], tmp_path, {}, lambda _l: None, stand_up=False)
    assert "Job" not in kubectl.applied and "DaemonSet" in kubectl.deleted


def test_a_bench_in_the_cluster_without_the_reference_up_says_so_and_applies_nothing(tmp_path, monkeypatch):
    from harness.platforms import registry

    platform, kubectl = RunningPlatform(up=False), ReachableKubectl([])
    monkeypatch.setattr(registry, "create", lambda *a, **k: platform)
    monkeypatch.setattr(runner, "Kubectl", lambda *a, **k: kubectl)
    with pytest.raises(runner.HarnessError, match="the reference is not up on kubernetes"):
        incluster.run("kubernetes", "kind", "img:1", ["bench"], tmp_path, {}, lambda _l: None, stand_up=False)
    assert kubectl.applied == []


def test_pytest_on_kind_from_outside_the_cluster_names_the_command_that_runs_it_inside():
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "scenarios/test_static.py", "--platform", "kind"],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[1],
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": "/tmp"},
    )  # fmt: skip
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "use `redis-harness run --platform kind`" in proc.stderr
