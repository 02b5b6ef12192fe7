"""Asking ComfyUI's Python about torch: answers, crashes, hangs, and the cache keyed on the installation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fluxops.machine.torchprobe import probe_torch
from tests.fakes.comfy_python import calls, make_fake_python

pytestmark = pytest.mark.skipif(os.name == "nt", reason="the fake interpreter is a POSIX shell script")


def _probe(where: Path, exe: Path, timeout: float = 30.0, driver: str | None = "550.54.14"):
    return probe_torch(exe, where / "state" / "torch.json", dict(os.environ), timeout=timeout, driver_version=driver)


def test_cuda_build_answers_and_is_cached(tmp_path: Path):
    exe = make_fake_python(tmp_path / "py", "cuda124")
    first = _probe(tmp_path, exe)
    assert first.status == "ok" and not first.cached
    assert (first.torch, first.cuda, first.cuda_available) == ("2.5.1+cu124", "12.4", True)
    assert first.cuda_tuple == (12, 4) and first.python_version == "3.12.3"
    second = _probe(tmp_path, exe)
    assert second.cached and second.torch == "2.5.1+cu124"
    assert calls(tmp_path / "py") == ["locate", "query", "locate"]  # the second run never imported torch


def test_reinstalling_torch_refreshes_the_answer(tmp_path: Path):
    exe = make_fake_python(tmp_path / "py", "cuda124")
    _probe(tmp_path, exe)
    version_file = tmp_path / "py" / "site-packages" / "torch" / "version.py"
    version_file.write_text("__version__ = '2.6.0+cu126'\n# reinstalled\n", encoding="utf-8")
    again = _probe(tmp_path, exe)
    assert not again.cached
    assert calls(tmp_path / "py").count("query") == 2


def test_a_driver_change_refreshes_the_answer(tmp_path: Path):
    exe = make_fake_python(tmp_path / "py", "cuda124")
    _probe(tmp_path, exe, driver="550.54.14")
    assert not _probe(tmp_path, exe, driver="560.35.03").cached


def test_cpu_only_build(tmp_path: Path):
    info = _probe(tmp_path, make_fake_python(tmp_path / "py", "cpu"))
    assert info.status == "ok" and info.cuda is None and info.cuda_available is False


def test_crash_reports_the_last_error_line(tmp_path: Path):
    info = _probe(tmp_path, make_fake_python(tmp_path / "py", "crash"))
    assert info.status == "crashed"
    assert info.error == "ImportError: libcudnn.so.9: cannot open shared object file: No such file or directory"
    assert not (tmp_path / "state" / "torch.json").exists()  # failures are not cached


def test_hang_times_out(tmp_path: Path):
    info = _probe(tmp_path, make_fake_python(tmp_path / "py", "hang"), timeout=1.0)
    assert info.status == "timeout" and "longer than 1 s" in (info.error or "")


def test_no_torch_installed(tmp_path: Path):
    info = _probe(tmp_path, make_fake_python(tmp_path / "py", "none"))
    assert info.status == "no_torch"


def test_missing_interpreter(tmp_path: Path):
    info = _probe(tmp_path, tmp_path / "nope" / "python")
    assert info.status == "no_python"


def test_corrupt_cache_is_ignored(tmp_path: Path):
    exe = make_fake_python(tmp_path / "py", "cuda124")
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "torch.json").write_text("{not json", encoding="utf-8")
    assert _probe(tmp_path, exe).status == "ok"
    assert _probe(tmp_path, exe).cached
