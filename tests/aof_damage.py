"""What a short write on a full disk leaves in an AOF incr file: the last command without its
final bytes, and the next command written after it (Redis 7.0 logs "Short write while writing
to the AOF file" and carries on). Redis refuses to load such a file: it is not a truncated tail."""

from __future__ import annotations

from pathlib import Path

NEXT_COMMAND = b"*3\r\n$3\r\nSET\r\n$5\r\napp:x\r\n$1\r\ny\r\n"


def short_write(incr: Path) -> None:
    body = incr.read_bytes()
    assert body.endswith(b"\r\n") and len(body) > 8, f"{incr.name} holds no complete command to cut"
    incr.write_bytes(body[:-3] + NEXT_COMMAND)


def newest_incr(aof_dir: Path) -> Path:
    return max(aof_dir.glob("*.incr.aof"), key=lambda p: int(p.name.split(".")[-3]))
