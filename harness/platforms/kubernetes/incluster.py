"""A `redis-harness` command inside the cluster: `run`, `bench` and `chaos` on kind and kubernetes.

Cluster clients follow MOVED to pod addresses and the reference admits clients only from
`role: client` pods, so these commands run as the runner Job (runner.py) with
`--platform kubernetes` and the in-cluster configuration. This module does what surrounds the Job
from the caller's side: the image (built and loaded on kind, named with --image elsewhere), the
reference stood up (or found up), the node agent and any extra objects for the run, and
everything removed again, whatever happened.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import reference
from harness.errors import HarnessError
from harness.platforms import registry
from harness.platforms.kubernetes import runner
from harness.report import rundir

ROOT = Path(__file__).resolve().parents[3]
IN_CLUSTER_PLATFORMS = ("kind", "kubernetes")
Extra = Callable[[str, str], list[dict[str, Any]]]  # (namespace, image) → objects for the run


def runs_as_job(platform: str, options: dict[str, Any] | None = None) -> bool:
    """A command on kind or kubernetes starts the runner Job, unless this process is that Job's pod."""
    options = options or {}
    return platform in IN_CLUSTER_PLATFORMS and not runner.in_cluster(options.get("kubeconfig"), options.get("context"))


def refuse_image(platform: str, image: str | None) -> None:
    if image:
        raise HarnessError(f"--image is for the runner Job on kind and kubernetes; the {platform} platform runs here")


def run(
    platform: str,
    overlay: str,
    image: str | None,
    args: list[str],
    reports: Path | None,
    options: dict[str, Any],
    say: Callable[[str], None],
    stand_up: bool = True,
    keep: bool = False,
    extra: Extra | None = None,
) -> tuple[int, Path | None]:
    """`redis-harness ARGS` as the runner Job: (its exit code, the run directory it brought back).
    With `stand_up`, the reference is stood up first and torn down after (unless `keep`); without,
    it must be up already (as `bench` on the local platform wants it)."""
    options = {k: v for k, v in options.items() if v is not None}
    if not image and platform != "kind":
        raise HarnessError(
            f"--platform {platform} runs in the cluster from the harness image: build it "
            "(`docker build -t REGISTRY/redis-harness:TAG .`), push it where the cluster pulls from, and name it with --image"
        )
    p = registry.create(platform, overlay=overlay, **options)
    if platform == "kind":
        from harness.platforms.kubernetes import kind

        kind.preflight(options.get("kind_bin"))  # kind and a container engine, or one sentence naming what is missing
    else:  # no cluster: one sentence, nothing created (kind makes its cluster in `up`)
        runner.Kubectl(options.get("kubeconfig"), options.get("context")).reachable()
    build = image is None
    image = image or f"redis-harness:run-{uuid.uuid4().hex[:10]}"
    if build:
        say(f"building the harness image {image}")
        docker_build(image)
    reports = Path(reports or rundir.REPORTS_DIR)
    if stand_up:
        p.up()
    elif not [pod for pod in p.pods() if pod.running]:
        raise HarnessError(f"the reference is not up on {platform}: stand it up with `redis-harness up --platform {platform}`")
    kubectl = runner.Kubectl(getattr(p, "kubeconfig", None), getattr(p, "context", None))
    namespace = reference.render(overlay).namespace()
    made = extra(namespace, image) if extra else []
    try:
        if build:
            kind_load(p, image)
        agent = runner.agent_objects(image)  # the node agent, with this run's image
        kubectl.apply(agent)
        runner.wait_rolled_out(kubectl, agent, say)  # before the Job: its first fault needs an agent on every node
        if made:
            kubectl.apply(made)
        return runner.run_job(kubectl, namespace, image, args, reports, say)
    finally:
        if made:
            kubectl.delete(made)
        if stand_up and not keep:
            p.down()
        elif not keep:
            kubectl.delete(runner.agent_objects(image))


def docker_build(image: str) -> None:
    """The harness image from this checkout's Dockerfile (kind without --image)."""
    docker = shutil.which("docker")
    if docker is None:
        raise HarnessError("building the harness image needs docker: install it, or name a built image with --image")
    proc = subprocess.run([docker, "build", "-t", image, str(ROOT)], capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise HarnessError(f"docker build of {image} failed: {proc.stderr.strip()[-500:]}")


def kind_load(platform: Any, image: str) -> None:
    """The image onto the kind cluster's nodes (`kind load docker-image`), as CI does."""
    from harness.platforms.kubernetes import kind

    binary = kind.preflight(getattr(platform, "kind_bin", None))
    name = platform.cluster.name
    proc = subprocess.run([binary, "load", "docker-image", image, "--name", name], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise HarnessError(f"kind load docker-image {image} failed: {proc.stderr.strip()[-500:]}")
