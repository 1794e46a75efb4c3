"""Processes a test started, found through /proc (to kill an emulator the way a crash would)."""
from pathlib import Path


def children(pid: int) -> list[int]:
    """Direct children of a process, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def qemu_children(pid: int) -> list[int]:
    """The QEMU processes `pid` started."""
    found = []
    for child in children(pid):
        try:
            if "qemu" in Path(f"/proc/{child}/cmdline").read_text():
                found.append(child)
        except OSError:
            continue
    return found
