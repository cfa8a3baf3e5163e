"""Fixtures of the fault tests: a real size-limited file system (a tmpfs mounted by the test)."""

from __future__ import annotations

import os
import subprocess

import pytest


class SmallFs:
    """Mounts tmpfs file systems of a given size under the test's tmp dir; unmounts them after."""

    def __init__(self, base) -> None:
        self._base, self._mounts = base, []

    def mount(self, size_bytes: int, name: str = "fs") -> str:
        path = os.path.join(str(self._base), f"{name}-{len(self._mounts)}")
        os.makedirs(path)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={int(size_bytes)}", "tmpfs",
                               path], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a size-limited tmpfs here (needs root and mount(2), "
                        f"i.e. CAP_SYS_ADMIN): {done.stderr.strip() or done.returncode}")
        self._mounts.append(path)
        return path

    @staticmethod
    def fill(path: str, leave_bytes: int) -> str:
        """Writes a filler file so that about ``leave_bytes`` stay free on ``path``'s file
        system."""
        st = os.statvfs(path)
        free = st.f_bavail * st.f_frsize
        filler = os.path.join(path, ".filler")
        with open(filler, "ab") as f:
            f.write(b"\0" * max(0, free - leave_bytes))
        return filler

    def unmount_all(self) -> None:
        for path in reversed(self._mounts):
            subprocess.run(["umount", "-l", path], capture_output=True)
        self._mounts.clear()


@pytest.fixture
def small_fs(tmp_path):
    """``small_fs.mount(size)`` → the path of a fresh tmpfs of ``size`` bytes (skips, saying
    why, where mounting is not permitted)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root (CI runs as root)")
    fs = SmallFs(tmp_path)
    yield fs
    fs.unmount_all()
