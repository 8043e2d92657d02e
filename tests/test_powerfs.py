"""powerfs on a real FUSE mount: what was fsynced survives a drop, what was not is gone,
and the namespace behaves as its model says (durable at once)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harness.platforms.local import powerfs

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/dev/fuse") or shutil.which("fusermount3") is None,
    reason="needs root, /dev/fuse and fuse3",
)


@pytest.fixture
def mounted(tmp_path):
    backing, mountpoint = tmp_path / "backing", tmp_path / "mnt"
    backing.mkdir()
    (backing / "old").write_bytes(b"there before the mount")
    powerfs.mount(backing, mountpoint, log=tmp_path / "powerfs.log")
    try:
        yield mountpoint, backing
    finally:
        powerfs.unmount(mountpoint)
    assert str(mountpoint) not in Path("/proc/mounts").read_text()
    assert powerfs.servers(mountpoint, exact=True) == {}


def write(path: Path, data: bytes, sync: bool = False, mode: str = "ab") -> None:
    with open(path, mode) as f:
        f.write(data)
        f.flush()
        if sync:
            os.fsync(f.fileno())


def test_a_drop_keeps_what_was_fsynced_and_loses_the_rest(mounted):
    mnt, backing = mounted
    write(mnt / "aof", b"one;two;", sync=True)
    write(mnt / "aof", b"three;")
    assert (mnt / "aof").read_bytes() == b"one;two;three;"  # unsynced, yet visible until the power goes
    assert powerfs.ask(mnt, "status")["bytes"] == 6
    lost = powerfs.ask(mnt, "drop")
    assert lost == {"files": 1, "bytes": 6}
    assert (mnt / "aof").read_bytes() == b"one;two;"
    assert (backing / "aof").read_bytes() == b"one;two;"
    assert powerfs.ask(mnt, "status")["files"] == 0


def test_fdatasync_counts_and_later_writes_are_lost(mounted):
    mnt, _ = mounted
    fd = os.open(mnt / "log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, b"a" * 5000)
        os.fdatasync(fd)
        os.write(fd, b"b" * 100)
    finally:
        os.close(fd)
    powerfs.ask(mnt, "drop")
    assert (mnt / "log").read_bytes() == b"a" * 5000


def test_overwrites_of_synced_bytes_are_put_back(mounted):
    mnt, _ = mounted
    write(mnt / "conf", b"0123456789", sync=True)
    with open(mnt / "conf", "r+b") as f:  # in place, as Redis rewrites nodes.conf
        f.seek(2)
        f.write(b"AB")
        f.seek(3)
        f.write(b"CDEFGHIJKLMN")  # over saved and unsaved bytes, and past the end
    os.truncate(mnt / "conf", 4)
    powerfs.ask(mnt, "drop")
    assert (mnt / "conf").read_bytes() == b"0123456789"


def test_files_untouched_since_the_mount_count_as_synced(mounted):
    mnt, _ = mounted
    write(mnt / "old", b" and after", mode="ab")
    powerfs.ask(mnt, "drop")
    assert (mnt / "old").read_bytes() == b"there before the mount"


def test_open_with_truncate_is_undone_too(mounted):
    mnt, _ = mounted
    write(mnt / "old", b"replaced", mode="wb")
    assert (mnt / "old").read_bytes() == b"replaced"
    powerfs.ask(mnt, "drop")
    assert (mnt / "old").read_bytes() == b"there before the mount"


def test_the_namespace_is_durable_at_once_and_unsynced_files_come_back_empty(mounted):
    """The model: create, rename, unlink survive a drop; contents only what was fsynced."""
    mnt, _ = mounted
    write(mnt / "never-synced", b"lost")
    write(mnt / "tmp-synced", b"kept", sync=True)
    os.rename(mnt / "tmp-synced", mnt / "manifest")  # no directory fsync
    write(mnt / "tmp-unsynced", b"gone")
    os.rename(mnt / "tmp-unsynced", mnt / "manifest2")
    (mnt / "dir").mkdir()
    write(mnt / "dir" / "x", b"x", sync=True)
    write(mnt / "doomed", b"d")
    (mnt / "doomed").unlink()
    powerfs.ask(mnt, "drop")
    assert sorted(os.listdir(mnt)) == ["dir", "manifest", "manifest2", "never-synced", "old"]
    assert (mnt / "never-synced").read_bytes() == b""
    assert (mnt / "manifest").read_bytes() == b"kept"
    assert (mnt / "manifest2").read_bytes() == b""  # rename without fsync first: the classic empty file
    assert (mnt / "dir" / "x").read_bytes() == b"x"


def test_statfs_and_space_pass_through(mounted):
    mnt, backing = mounted
    ours, theirs = os.statvfs(mnt), os.statvfs(backing)
    assert (ours.f_blocks, ours.f_frsize) == (theirs.f_blocks, theirs.f_frsize)
    with open(mnt / "big", "wb") as f:
        os.posix_fallocate(f.fileno(), 0, 1 << 20)
    assert os.stat(backing / "big").st_size == 1 << 20
    powerfs.ask(mnt, "drop")
    assert os.stat(mnt / "big").st_size == 0


def test_a_second_drop_loses_nothing_more(mounted):
    mnt, _ = mounted
    write(mnt / "f", b"kept", sync=True)
    powerfs.ask(mnt, "drop")
    assert powerfs.ask(mnt, "drop") == {"files": 0, "bytes": 0}
    assert (mnt / "f").read_bytes() == b"kept"


def test_an_unknown_command_is_refused(mounted):
    mnt, _ = mounted
    with pytest.raises(OSError, match="unknown command"):
        powerfs.ask(mnt, "sync-everything")
