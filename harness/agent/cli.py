"""`python -m harness.agent VERB --pod NAME --namespace NS [options]`: one fault, one JSON line.

Exit status 0 when the fault is in place, 2 on bad input (an unknown verb or pod, a malformed
option), 1 when it could not be applied (not supported here, a tool missing, the process gone);
on failure stdout still carries one JSON line ({"ok": false, "error": ..., "not_supported": ...})
and stderr the same sentence.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn, TextIO

from harness.agent import actions
from harness.agent.procs import BadInput, find_pod
from harness.errors import HarnessError, NotSupported

POD_VERBS = ("kill", "stop", "cont", "partition", "heal", "shape", "unshape", "fill", "free", "handshake")
VERBS = (*POD_VERBS, "serve")
POD_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise BadInput(f"{message} (python -m harness.agent {self.prog.split()[-1]} --help)")


def _percent(text: str) -> float:
    value = float(text)
    if not 0 <= value < 100:
        raise argparse.ArgumentTypeError(f"loss must be at least 0 and below 100 percent, not {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def _address(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an IP address") from None


def _peers(text: str) -> list[str]:
    peers = []
    for item in text.split(","):
        try:
            peers.append(str(ipaddress.IPv4Address(item.strip())))
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{item}' is not an IPv4 address (a partition drops IPv4 peers)") from None
    return sorted(set(peers))


def parser(verb: str) -> Parser:
    p = Parser(prog=f"python -m harness.agent {verb}", description=__doc__)
    if verb == "serve":
        return p
    p.add_argument("--pod", required=True, help="the pod's name")
    p.add_argument("--namespace", required=True, help="the pod's namespace")
    p.add_argument("--pod-ip", type=_address, help="the pod's address (status.podIP): act only if its Redis has it")
    if verb == "partition":
        p.add_argument("--peers", required=True, type=_peers, help="ADDR[,ADDR...]: drop every packet to and from these")
    if verb == "handshake":
        p.add_argument("--to", required=True, type=_address, help="the address to connect to, from the pod")
        p.add_argument("--port", required=True, type=_positive_int, help="the port to connect to")
        p.add_argument("--present", choices=actions.PRESENTED, default="own", help="the certificate to present")
        p.add_argument("--trust", choices=("own", "foreign"), default="own", help="the CA to trust the server by")
        p.add_argument("--tls-dir", default="/etc/redis-tls", help="where the pod's container mounts its TLS files")
        p.add_argument("--ping", action="store_true", help="send a RESP PING after the handshake (the client port)")
    if verb == "shape":
        p.add_argument("--loss", type=_percent, default=0.0, help="random loss in percent, both directions")
        p.add_argument("--delay-ms", type=_non_negative, default=0.0, help="egress delay (tc netem)")
        p.add_argument("--jitter-ms", type=_non_negative, default=0.0, help="± jitter on the delay (tc netem)")
        p.add_argument("--rate-kbit", type=_positive_int, default=None, help="egress bandwidth limit (tc)")
    return p


def parse(argv: list[str]) -> tuple[str, argparse.Namespace]:
    """The verb and its options; BadInput in one sentence for anything else."""
    if not argv or argv[0] in ("-h", "--help"):
        raise BadInput(f"name a verb: one of {', '.join(VERBS)}")
    verb = argv[0]
    if verb not in VERBS:
        raise BadInput(f"unknown verb '{verb}': choose one of {', '.join(VERBS)}")
    args = parser(verb).parse_args(argv[1:])
    if verb == "serve":
        return verb, args
    if not POD_NAME.fullmatch(args.pod):
        raise BadInput(f"'{args.pod}' is not a pod name")
    if not NAMESPACE.fullmatch(args.namespace):
        raise BadInput(f"'{args.namespace}' is not a namespace name")
    if verb == "shape":
        if args.jitter_ms and not args.delay_ms:
            raise BadInput("--jitter-ms needs --delay-ms")
        if not (args.loss or args.delay_ms or args.rate_kbit):
            raise BadInput("shape needs --loss, --delay-ms or --rate-kbit (unshape undoes it)")
    return verb, args


def apply(verb: str, args: argparse.Namespace, proc_root: Path, host_root: Path | None, state_dirs: list[Path] | None) -> dict:
    target = find_pod(args.pod, args.namespace, args.pod_ip, proc_root=proc_root, host_root=host_root, state_dirs=state_dirs)
    found: dict[str, Any] = {"pid": target.pid, "found_by": target.source, "addresses": list(target.addresses)}
    if verb == "partition":
        done = actions.partition(target, args.peers)
    elif verb == "shape":
        done = actions.shape(target, args.loss, args.delay_ms, args.jitter_ms, args.rate_kbit)
    elif verb == "handshake":
        done = actions.handshake(target, args.to, args.port, args.present, args.trust, args.tls_dir, args.ping, proc_root)
    elif verb in ("fill", "free"):
        done = getattr(actions, verb)(target, proc_root)
    else:
        done = getattr(actions, verb)(target)
    return {**found, **done}


def serve() -> int:
    """Idle until told to stop: the DaemonSet's container, into which verbs are exec'd."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(json.dumps({"ok": True, "verb": "serve", "verbs": list(POD_VERBS)}), flush=True)
    while True:
        signal.pause()


def main(
    argv: list[str] | None = None,
    proc_root: Path = Path("/proc"),
    host_root: Path | None = None,
    state_dirs: list[Path] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    argv = sys.argv[1:] if argv is None else argv
    result: dict[str, Any] = {"ok": False, "verb": argv[0] if argv else None}
    try:
        verb, args = parse(argv)
        if verb == "serve":
            return serve()
        result.update(pod=args.pod, namespace=args.namespace)
        result.update(apply(verb, args, proc_root, host_root, state_dirs))
        result["ok"] = True
        status = 0
    except BadInput as exc:
        result["error"], status = str(exc), 2
    except NotSupported as exc:
        result.update(error=str(exc), not_supported=True)
        status = 1
    except (HarnessError, OSError) as exc:
        result.update(error=str(exc), not_supported=False)
        status = 1
    print(json.dumps(result), file=out, flush=True)
    if status:
        print(result["error"], file=err, flush=True)
    return status
