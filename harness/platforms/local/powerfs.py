"""powerfs: a passthrough FUSE filesystem that can lose power, in the manner of Jepsen's LazyFS.

Mounted over a backing directory, it passes every operation through, and remembers what a
power loss would take: for each regular file, its contents as of its last fsync/fdatasync.
On `drop` every file goes back to those contents, as after a power cut that lost the page
cache. The server's own writes reach the backing directory at once (nothing is held in
memory but the overwritten bytes a drop must put back), so a drop costs what was unsynced.

The model, chosen to be small and to match what Redis relies on:

- File *contents and size* are lazy. A write or truncate is undone by a drop unless an
  fsync or fdatasync of that file (either: both carry the data Redis writes) followed it.
  Files untouched since the mount count as synced. Appends are undone by truncating back to
  the synced size; overwrites inside the synced size keep the bytes they replaced, once per
  byte, and put them back.
- The *namespace and attributes* are durable at once, as LazyFS keeps them: create, mkdir,
  rename, link, unlink, chmod, utimens pass through and survive a drop; fsyncdir has nothing
  left to make durable. So a file created and never synced survives empty, and a rename
  survives without a directory fsync carrying the renamed file's own synced contents
  ("write tmp; rename" without an fsync leaves an empty file, the classic crash outcome).

Why this model: Redis's append-only file is written with write() and made durable with
fdatasync() (`appendfsync always`: before the reply; `everysec`: once a second; `no`:
never, left to the kernel), and its rewrites fsync the new file before renaming it and
fsync the directory after. What differs between the appendfsync settings is the file
data, which this model loses exactly; undoing renames and unlinks as well would need a
journal of directory operations for a path Redis already fsyncs.

Run one per mount: `python -m harness.platforms.local.powerfs BACKING MOUNTPOINT`. It
answers on an abstract Unix socket named after the mount point (`control_address`): send
`status` or `drop`, one line, and read one line of JSON back. Unmount (`umount MOUNTPOINT`,
or SIGTERM to the process) ends it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


def control_address(mountpoint: str | Path) -> str:
    """The abstract socket (Linux; no file on disk) the mount at `mountpoint` answers on."""
    digest = hashlib.sha256(str(Path(mountpoint).resolve()).encode()).hexdigest()[:24]
    return f"\0rh-powerfs-{digest}"


@dataclass
class Unsynced:
    """What a drop must undo in one file: its size at the last sync, and the synced bytes
    overwritten since (offset → bytes; the ranges never overlap)."""

    fd: int  # the backing file, open for the undo even if renamed or unlinked meanwhile
    synced_size: int
    saved: dict[int, bytes] = field(default_factory=dict)
    written: int = 0  # bytes written since the sync, for status

    def covered(self, start: int, end: int) -> list[tuple[int, int]]:
        """The parts of [start, end) not saved yet."""
        gaps, at = [], start
        for off in sorted(self.saved):
            stop = off + len(self.saved[off])
            if stop <= at or off >= end:
                continue
            if off > at:
                gaps.append((at, off))
            at = max(at, stop)
        if at < end:
            gaps.append((at, end))
        return gaps

    def keep(self, start: int, end: int) -> None:
        """Save the synced bytes of [start, end) that are not saved yet, before they change."""
        end = min(end, self.synced_size)
        for a, b in self.covered(start, end) if start < end else []:
            self.saved[a] = os.pread(self.fd, b - a, a)

    def undo(self) -> None:
        for off, data in self.saved.items():
            os.pwrite(self.fd, data, off)
        os.ftruncate(self.fd, self.synced_size)


class PowerFS:
    """The FUSE operations (mfusepy's high-level API): passthrough plus the unsynced ledger."""

    use_ns = True

    def __init__(self, backing: str | Path):
        self.backing = str(Path(backing).resolve())
        self._mutex = threading.Lock()
        self.unsynced: dict[int, Unsynced] = {}  # backing inode → what a drop undoes
        self.inode: dict[int, int] = {}  # open handle → backing inode
        self.drops = 0

    def _path(self, path: str) -> str:
        return self.backing + path

    # --- the ledger --------------------------------------------------------------------
    def _dirty(self, fh: int) -> Unsynced:
        """The file's entry, made on its first change since the last sync (caller holds the lock)."""
        ino = self.inode[fh]
        entry = self.unsynced.get(ino)
        if entry is None:
            fd = os.open(f"/proc/self/fd/{fh}", os.O_RDWR)  # the handle may be write-only; the undo reads
            entry = self.unsynced[ino] = Unsynced(fd, os.fstat(fd).st_size)
        return entry

    def _synced(self, ino: int) -> None:
        entry = self.unsynced.pop(ino, None)
        if entry is not None:
            os.close(entry.fd)

    def drop(self) -> dict[str, int]:
        """Power loss: every file back to its contents at its last sync."""
        with self._mutex:
            files = len(self.unsynced)
            written = sum(e.written for e in self.unsynced.values())
            for ino in list(self.unsynced):
                self.unsynced[ino].undo()
                self._synced(ino)
            self.drops += 1
        return {"files": files, "bytes": written}

    def status(self) -> dict[str, int]:
        with self._mutex:
            return {
                "files": len(self.unsynced),
                "bytes": sum(e.written for e in self.unsynced.values()),
                "drops": self.drops,
            }

    # --- files -------------------------------------------------------------------------
    def _opened(self, fd: int) -> int:
        self.inode[fd] = os.fstat(fd).st_ino
        return fd

    def open(self, path: str, flags: int) -> int:
        # O_APPEND is the kernel's business: it sends the offset; pwrite on an O_APPEND fd would ignore it.
        flags &= ~os.O_APPEND
        if flags & os.O_TRUNC:
            fd = self._opened(os.open(self._path(path), flags & ~os.O_TRUNC))
            self.truncate(path, 0, fd)
            return fd
        return self._opened(os.open(self._path(path), flags))

    def create(self, path: str, mode: int, flags: int = os.O_WRONLY) -> int:
        # A new file is created empty; what it will hold is unsynced until an fsync.
        return self._opened(os.open(self._path(path), (flags & ~os.O_APPEND) | os.O_CREAT, mode))

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        return os.pread(fh, size, offset)

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        with self._mutex:
            entry = self._dirty(fh)
            if offset < entry.synced_size:
                entry.keep(offset, offset + len(data))
            written = os.pwrite(fh, data, offset)
            entry.written += written
            return written

    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        fd = fh if fh is not None else self._opened(os.open(self._path(path), os.O_WRONLY))
        try:
            with self._mutex:
                entry = self._dirty(fd)
                entry.keep(length, entry.synced_size)
                os.ftruncate(fd, length)
        finally:
            if fh is None:
                self.release(path, fd)
        return 0

    def fallocate(self, path: str, mode: int, offset: int, size: int, fh: int) -> int:
        if mode:
            raise OSError(errno.EOPNOTSUPP, "only plain allocation")
        with self._mutex:
            self._dirty(fh)
            os.posix_fallocate(fh, offset, size)
        return 0

    def fsync(self, path: str, datasync: int, fh: int) -> int:
        with self._mutex:
            self._synced(self.inode[fh])
        (os.fdatasync if datasync else os.fsync)(fh)  # the backing disk pays for it too
        return 0

    def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
        return 0  # the namespace is durable at once (see the model above)

    def flush(self, path: str, fh: int) -> int:
        return 0

    def release(self, path: str, fh: int) -> int:
        with self._mutex:
            self.inode.pop(fh, None)
        os.close(fh)
        return 0

    # --- the namespace and attributes: straight through ----------------------------------------
    def getattr(self, path: str, fh: int | None = None) -> dict[str, int]:
        st = os.fstat(fh) if fh is not None else os.lstat(self._path(path))
        keys = ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_ino", "st_blocks", "st_blksize")
        attrs = {k: getattr(st, k) for k in keys}
        attrs.update(st_atime=st.st_atime_ns, st_mtime=st.st_mtime_ns, st_ctime=st.st_ctime_ns)
        return attrs

    def access(self, path: str, amode: int) -> int:
        if not os.access(self._path(path), amode):
            raise OSError(errno.EACCES, "no access")
        return 0

    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", "..", *os.listdir(self._path(path))]

    def readlink(self, path: str) -> str:
        return os.readlink(self._path(path))

    def mkdir(self, path: str, mode: int) -> int:
        os.mkdir(self._path(path), mode)
        return 0

    def rmdir(self, path: str) -> int:
        os.rmdir(self._path(path))
        return 0

    def unlink(self, path: str) -> int:
        target = self._path(path)
        ino = os.lstat(target).st_ino
        os.unlink(target)
        with self._mutex:
            entry = self.unsynced.get(ino)
            if entry is not None and os.fstat(entry.fd).st_nlink == 0:
                self._synced(ino)  # gone: nothing left for a drop to restore
        return 0

    def rename(self, old: str, new: str) -> int:
        os.rename(self._path(old), self._path(new))
        return 0

    def link(self, target: str, source: str) -> int:
        os.link(self._path(source), self._path(target))
        return 0

    def symlink(self, target: str, source: str) -> int:
        os.symlink(source, self._path(target))
        return 0

    def chmod(self, path: str, mode: int) -> int:
        os.chmod(self._path(path), mode)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        os.lchown(self._path(path), uid, gid)
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        os.utime(self._path(path), ns=times) if times else os.utime(self._path(path))
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        st = os.statvfs(self._path(path))
        keys = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")
        return {k: getattr(st, k) for k in keys}


# --- the control socket --------------------------------------------------------------------
def _serve(fs: PowerFS, server: socket.socket) -> None:
    while True:
        conn, _ = server.accept()
        with conn:
            command = conn.makefile().readline().strip()
            try:
                reply = {"drop": fs.drop, "status": fs.status}[command]()
            except KeyError:
                reply = {"error": f"unknown command {command!r}: status or drop"}
            except OSError as exc:
                reply = {"error": str(exc)}
            conn.sendall((json.dumps(reply) + "\n").encode())


def ask(mountpoint: str | Path, command: str, timeout: float = 30.0) -> dict[str, int]:
    """Send `status` or `drop` to the powerfs mounted at `mountpoint`; its JSON answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        try:
            conn.connect(control_address(mountpoint))
        except OSError as exc:
            raise OSError(exc.errno, f"no powerfs answers for {mountpoint}: {exc.strerror}") from None
        conn.sendall(f"{command}\n".encode())
        reply = json.loads(conn.makefile().readline() or "{}")
    if "error" in reply:
        raise OSError(errno.EIO, f"powerfs at {mountpoint}: {reply['error']}")
    return reply


def serve(backing: str, mountpoint: str) -> None:
    """Mount and serve until unmounted (foreground, multi-threaded)."""
    import mfusepy  # here, not above: only a mount needs libfuse

    fs = PowerFS(backing)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(control_address(mountpoint))
    server.listen(4)
    threading.Thread(target=_serve, args=(fs, server), daemon=True).start()
    # No attribute or name caching in the kernel: after a drop, sizes are the backing file's at once.
    mfusepy.FUSE(fs, mountpoint, foreground=True, fsname=f"powerfs:{backing}", attr_timeout=0, entry_timeout=0,
                 negative_timeout=0)  # fmt: skip


def mounted(mountpoint: str | Path) -> bool:
    """Whether a powerfs is mounted there and answers."""
    path = str(Path(mountpoint).resolve())
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if fields[1] == path and fields[0].startswith("powerfs:"):
            try:
                ask(mountpoint, "status", timeout=5)
                return True
            except OSError:
                return False
    return False


class Starting:
    """A powerfs server on its way up (`start`); `wait` returns its pid once the mount answers."""

    def __init__(self, proc: subprocess.Popen, mountpoint: Path, log: Path | None, timeout: float):
        self.proc, self.mountpoint, self.log = proc, mountpoint, log
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout

    def wait(self) -> int:
        while time.monotonic() < self.deadline:
            if self.proc.poll() is not None:
                detail = Path(self.log).read_text(errors="replace").strip().splitlines()[-1:] if self.log else []
                raise OSError(errno.EIO, f"powerfs at {self.mountpoint} exited: {' '.join(detail) or self.proc.returncode}")
            if mounted(self.mountpoint):
                return self.proc.pid
            time.sleep(0.05)
        self.proc.kill()
        raise OSError(errno.ETIMEDOUT, f"powerfs at {self.mountpoint} did not come up within {self.timeout:.0f}s")


def start(backing: str | Path, mountpoint: str | Path, log: Path | None = None, timeout: float = 15.0) -> Starting:
    """Start a powerfs over `backing` at `mountpoint` in a process of its own, without waiting
    for it (several start side by side)."""
    mountpoint = Path(mountpoint).resolve()
    mountpoint.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.platforms.local.powerfs", str(backing), str(mountpoint)],
        stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "POWERFS_MOUNT": str(mountpoint)},
    )  # fmt: skip
    if log:
        out.close()  # type: ignore[union-attr]
    return Starting(proc, mountpoint, log, timeout)


def mount(backing: str | Path, mountpoint: str | Path, log: Path | None = None, timeout: float = 15.0) -> int:
    """Start a powerfs over `backing` at `mountpoint` in a process of its own; returns its pid
    once the mount answers."""
    return start(backing, mountpoint, log, timeout).wait()


def unmount(mountpoint: str | Path) -> None:
    """Unmount (lazily when still busy) and end the process that served it."""
    path = str(Path(mountpoint).resolve())
    if any(line.split()[1] == path for line in Path("/proc/mounts").read_text().splitlines()):
        if subprocess.run(["umount", path], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", path], capture_output=True)
    end_servers(Path(path), exact=True)


def servers(where: Path, exact: bool = False) -> dict[int, str]:
    """Powerfs processes serving `where` (exact) or a mount point under it: pid → mount point."""
    target = str(where.resolve())
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"harness.platforms.local.powerfs" in argv and len(argv) >= 3:
            mountpoint = argv[argv.index(b"harness.platforms.local.powerfs") + 2].decode(errors="replace")
            if mountpoint == target or (not exact and mountpoint.startswith(target + "/")):
                found[int(pid)] = mountpoint
    return found


def end_servers(where: Path, exact: bool = False, grace: float = 5.0) -> None:
    """End the powerfs processes serving `where` (exact) or mount points under it; returns when
    they are gone. One whose mount is gone has nothing left to serve (its writes reached the
    backing directory as they came) and is killed at once: left to exit on its own it took
    0.7-5 s with a cluster's tests running beside it. One whose mount is still listed (busy, or
    mounted after the caller's umount) gets `grace` seconds, then is killed too."""
    deadline = time.monotonic() + grace
    while left := servers(where, exact):
        listed = {line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()}
        late = time.monotonic() >= deadline
        for pid, mountpoint in left.items():
            if late or mountpoint not in listed:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if time.monotonic() >= deadline + 2:
            return  # what SIGKILL has not ended in 2 s (stuck in the kernel) cannot be waited for
        time.sleep(0.02)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m harness.platforms.local.powerfs BACKING MOUNTPOINT")
    serve(sys.argv[1], sys.argv[2])
