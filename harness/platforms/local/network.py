"""Pod networking for the local platform.

`NamespaceNetwork` (root on Linux): one network namespace per pod, a veth pair
into a bridge, an address from the test range. The bridge carries the range's
first address: the node, which (like kubelet) may always reach its pods.
`LoopbackNetwork` (no root): every pod binds its own 127.x address; it cannot
isolate or partition anything, and says so.

Addresses are never reused within a cluster's life, so a restarted pod comes
back with a new one, as on Kubernetes.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence

from harness.errors import HarnessError, NeedsRoot, NotSupported
from harness.platforms.local.ledger import Ledger, PodRecord
from harness.platforms.local.policy import TABLE as POLICY_TABLE

DEFAULT_SUBNET = "198.18.0.0/15"  # the benchmarking range (RFC 2544): routed nowhere
AUTO_PREFIX = 20  # a cluster without --subnet takes a free /20: 4094 addresses, never reused in its life
DEFAULT_LOOPBACK_SUBNET = "127.18.0.0/16"


def have_root() -> bool:
    return os.geteuid() == 0 and os.uname().sysname == "Linux"


def run(argv: Sequence[str], input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(list(argv), input=input, capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise HarnessError(f"'{argv[0]}' is not installed: install iproute2 and nftables") from None
    if check and proc.returncode != 0:
        raise HarnessError(f"{' '.join(argv[:4])} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def routed_ranges() -> list[tuple[ipaddress.IPv4Network, str]]:
    """Every IPv4 range this host routes (all tables), with its device: what a new bridge must not overlap."""
    routes = json.loads(run(["ip", "-j", "route", "show", "table", "all"]).stdout or "[]")
    found = []
    for route in routes:
        dst = route.get("dst", "")
        if dst in ("default", "") or ":" in dst or route.get("type") == "broadcast":
            continue
        try:
            net = ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False)
        except ValueError:
            continue
        if net.version == 4:
            found.append((net, route.get("dev", "?")))
    return found


@contextlib.contextmanager
def claiming_a_range():
    """Held from choosing a free range until its bridge's route exists: clusters started at the
    same moment (gate lanes, parallel test workers) would otherwise see the same range free."""
    path = os.path.join("/run/lock" if os.access("/run/lock", os.W_OK) else tempfile.gettempdir(), "redis-harness-ranges.lock")
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def free_range(prefixlen: int = 24, within: str = DEFAULT_SUBNET) -> str:
    """The first range of this size inside `within` that no route on this host overlaps: clusters
    started side by side, or beside someone else's, each get their own."""
    used = [net for net, _ in routed_ranges()]
    for candidate in ipaddress.ip_network(within).subnets(new_prefix=prefixlen):
        if not any(candidate.overlaps(net) for net in used):
            return str(candidate)
    raise HarnessError(f"no free /{prefixlen} address range is left inside {within}: run `redis-harness down` on clusters you no longer need")


class LoopbackNetwork:
    kind = "loopback"
    enforces_policy = False

    def __init__(self, ledger: Ledger, subnet: str = DEFAULT_LOOPBACK_SUBNET):
        net = ipaddress.ip_network(subnet)
        if not net.subnet_of(ipaddress.ip_network("127.0.0.0/8")):
            raise HarnessError(f"the loopback network needs a range inside 127.0.0.0/8, not {subnet}")
        self.ledger = ledger
        self.net = net

    def setup(self) -> None:
        self.ledger.subnet = str(self.net)
        self.ledger.gateway = "127.0.0.1"

    def teardown(self) -> None:
        pass

    def allocate(self) -> str:
        hosts = self.net.num_addresses - 2
        if self.ledger.next_host > hosts:
            raise HarnessError(f"the address range {self.net} is exhausted: choose a larger one")
        addr = str(self.net.network_address + self.ledger.next_host)
        self.ledger.next_host += 1
        return addr

    def attach(self, pod: PodRecord) -> None:
        pod.address = self.allocate()

    def detach(self, pod: PodRecord) -> None:
        pass

    def wrap(self, pod: PodRecord | str | None, argv: Sequence[str]) -> list[str]:
        return list(argv)

    def apply_ruleset(self, pod: PodRecord, ruleset: str | None) -> None:
        if ruleset is not None:
            raise NeedsRoot("enforcing NetworkPolicy needs network namespaces: run as root on Linux")


class NamespaceNetwork:
    kind = "netns"
    enforces_policy = True

    def __init__(self, ledger: Ledger, tag: str, subnet: str = DEFAULT_SUBNET):
        if not have_root():
            raise NeedsRoot("network namespaces need root on Linux: run as root, or use --network loopback")
        for tool in ("ip", "nft"):
            if shutil.which(tool) is None:
                raise HarnessError(f"'{tool}' is not installed: install iproute2 and nftables")
        try:
            self.net = ipaddress.ip_network(subnet)
        except ValueError as exc:
            raise HarnessError(f"invalid address range '{subnet}': {exc}") from None
        if self.net.version != 4 or self.net.num_addresses < 16:
            raise HarnessError(f"the address range {subnet} must be IPv4 with at least 16 addresses")
        self.ledger = ledger
        self.tag = tag
        self.bridge = f"rh{tag}br"

    # --- the bridge --------------------------------------------------------
    def _check_range_free(self) -> None:
        for other, dev in routed_ranges():
            if dev != self.bridge and other.overlaps(self.net):
                raise HarnessError(
                    f"the address range {self.net} is already in use (route {other} on {dev}): "
                    "choose another with --subnet"
                )

    def setup(self) -> None:
        self._check_range_free()
        gateway = f"{self.net.network_address + 1}/{self.net.prefixlen}"
        run(["ip", "link", "add", self.bridge, "type", "bridge"])
        self.ledger.bridge = self.bridge
        self.ledger.links.append(self.bridge)
        run(["ip", "addr", "add", gateway, "dev", self.bridge])
        run(["ip", "link", "set", self.bridge, "up"])
        self.ledger.gateway = str(self.net.network_address + 1)
        self.ledger.subnet = str(self.net)

    def teardown(self) -> None:
        for ns in list(self.ledger.netns):
            delete_netns(ns)
            self.ledger.netns.remove(ns)
        for link in list(self.ledger.links):
            run(["ip", "link", "del", link], check=False)
            self.ledger.links.remove(link)

    # --- pods ----------------------------------------------------------------
    def allocate(self) -> str:
        if self.ledger.next_host >= self.net.num_addresses - 1:
            raise HarnessError(f"the address range {self.net} is exhausted: choose a larger one with --subnet")
        addr = str(self.net.network_address + self.ledger.next_host)
        self.ledger.next_host += 1
        return addr

    def _plumb(self, netns: str, index: int) -> tuple[str, str]:
        """A namespace with eth0 on the bridge; returns (address, host-side link)."""
        address = self.allocate()
        host_link = f"rh{self.tag}v{index}"
        run(["ip", "netns", "add", netns])
        self.ledger.netns.append(netns)
        run(["ip", "link", "add", host_link, "type", "veth", "peer", "name", "eth0", "netns", netns])
        self.ledger.links.append(host_link)
        run(["ip", "link", "set", host_link, "master", self.bridge, "up"])
        # One `ip -n` for the inside: no `ip netns exec` (a mount namespace and /sys remounted) per step.
        inside = ["link set lo up", f"addr add {address}/{self.net.prefixlen} dev eth0", "link set eth0 up",
                  f"route add default via {self.ledger.gateway}"]  # fmt: skip
        run(["ip", "-n", netns, "-batch", "-"], input="\n".join(inside) + "\n")
        return address, host_link

    def _unplumb(self, netns: str | None, host_link: str | None) -> None:
        if netns:
            delete_netns(netns)
            if netns in self.ledger.netns:
                self.ledger.netns.remove(netns)
        if host_link:
            run(["ip", "link", "del", host_link], check=False)
            if host_link in self.ledger.links:
                self.ledger.links.remove(host_link)

    def attach(self, pod: PodRecord) -> None:
        """Give the pod a fresh sandbox: a new namespace and a new address."""
        self.detach(pod)
        pod.generation += 1
        index = self.ledger.next_host
        pod.netns = f"rh-{self.tag}-{pod.name}"
        pod.address, pod.host_link = self._plumb(pod.netns, index)

    def detach(self, pod: PodRecord) -> None:
        self._unplumb(pod.netns, pod.host_link)
        pod.netns = pod.host_link = None

    def wrap(self, pod: PodRecord | str | None, argv: Sequence[str]) -> list[str]:
        netns = pod.netns if isinstance(pod, PodRecord) else pod
        if not netns:
            return list(argv)
        return ["ip", "netns", "exec", netns, *argv]

    def apply_ruleset(self, pod: PodRecord, ruleset: str | None) -> None:
        self.apply_table(pod, POLICY_TABLE, ruleset)

    def apply_table(self, pod: PodRecord, table: str, ruleset: str | None) -> None:
        """Replace one nftables table of the pod's namespace (None: remove it); other tables stay."""
        apply_table_in(["ip", "netns", "exec", str(pod.netns)], table, ruleset)

    def set_qdisc(self, pod: PodRecord, qdisc: list[str] | None) -> None:
        """Replace the egress qdisc of the pod's eth0 (None: back to the default)."""
        set_qdisc_in(["ip", "netns", "exec", str(pod.netns)], qdisc)


def apply_table_in(enter: Sequence[str], table: str, ruleset: str | None) -> None:
    """Replace one nftables table of the network namespace `enter` runs in (`ip netns exec NS` here,
    `nsenter -t PID -n` in the node agent); None removes it; other tables stay. One transaction:
    no moment without the old table or the new one (`add` first, so that the delete never fails)."""
    script = f"add table inet {table}\ndelete table inet {table}\n{ruleset or ''}"
    run([*enter, "nft", "-f", "-"], input=script)


def set_qdisc_in(enter: Sequence[str], qdisc: list[str] | None, platform: str = "local") -> None:
    """Replace the egress qdisc of eth0 in the network namespace `enter` runs in (None: back to the
    default); a qdisc this kernel lacks (sch_netem) is NotSupported, never silently skipped."""
    tc = [*enter, "tc", "qdisc"]
    run([*tc, "del", "dev", "eth0", "root"], check=False)
    if qdisc is not None:
        proc = run([*tc, "add", "dev", "eth0", "root", *qdisc], check=False)
        if proc.returncode != 0:
            reason = proc.stderr.strip() or proc.stdout.strip()
            if "unknown" in reason.lower():
                raise NotSupported(f"tc {qdisc[0]} (this kernel lacks it: {reason})", platform)
            raise HarnessError(f"tc qdisc add {' '.join(qdisc)} failed: {reason}")


def delete_netns(netns: str) -> None:
    """Delete a namespace, killing whatever still runs in it first."""
    pids = run(["ip", "netns", "pids", netns], check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), 9)
        except (ProcessLookupError, ValueError):
            pass
    run(["ip", "netns", "del", netns], check=False)


def sweep_namespaces(tag: str) -> list[str]:
    """Remove namespaces and links named for this cluster's tag: what a crashed run left."""
    removed = []
    listing = run(["ip", "netns", "list"], check=False).stdout.splitlines()
    for line in listing:
        name = line.split()[0] if line.strip() else ""
        if name.startswith(f"rh-{tag}-"):
            delete_netns(name)
            removed.append(f"netns {name}")
    links = json.loads(run(["ip", "-j", "link", "show"], check=False).stdout or "[]")
    for link in links:
        name = link.get("ifname", "")
        if name.startswith(f"rh{tag}"):
            run(["ip", "link", "del", name], check=False)
            removed.append(f"link {name}")
    return removed
