"""The launcher's pure parts: command line, extra_model_paths.yaml, crash classification, log files."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from fluxops.comfy import command as cmdline
from fluxops.comfy import logfile
from fluxops.comfy.crash import classify
from fluxops.errors import FluxopsError
from fluxops.models.layout import search_paths
from tests.conftest import DATA
from tests.fakes.comfyui.folders import FolderPaths

PY, MAIN = Path("/c/venv/bin/python"), Path("/c/main.py")


def test_command_line_defaults_and_memory_seam() -> None:
    base = cmdline.build_command(PY, MAIN, listen="127.0.0.1", port=8188)
    assert base == [str(PY), str(MAIN), "--listen", "127.0.0.1", "--port", "8188", "--disable-auto-launch"]
    budget = cmdline.build_command(
        PY,
        MAIN,
        listen="127.0.0.1",
        port=8188,
        memory_flags=["--lowvram"],
        extra_args=["--preview-method", "none"],
    )
    assert budget[-3:] == ["--lowvram", "--preview-method", "none"]
    # a memory flag given by the user wins over the budget's
    mine = cmdline.build_command(
        PY,
        MAIN,
        listen="127.0.0.1",
        port=8188,
        memory_flags=["--lowvram"],
        extra_args=["--reserve-vram", "2"],
    )
    assert "--lowvram" not in mine and mine[-2:] == ["--reserve-vram", "2"]
    yaml_cmd = cmdline.build_command(
        PY, MAIN, listen="0.0.0.0", port=9000, extra_paths_yaml=Path("/s/x.yaml")
    )
    assert yaml_cmd[-2:] == ["--extra-model-paths-config", "/s/x.yaml"]


def test_comfy_args_are_split_and_owned_flags_refused() -> None:
    assert cmdline.split_comfy_args(["--reserve-vram 2", "--cpu"]) == ["--reserve-vram", "2", "--cpu"]
    for owned in ("--port=9000", "--listen", "--auto-launch"):
        with pytest.raises(FluxopsError) as err:
            cmdline.split_comfy_args([owned])
        assert err.value.code == "comfy.bad_argument"


def test_listen_values() -> None:
    assert cmdline.parse_listen("127.0.0.1,::1") == ["127.0.0.1", "::1"]
    assert cmdline.exposed_addresses(["127.0.0.1", "0.0.0.0", "::"]) == ["0.0.0.0", "::"]
    assert cmdline.connect_host("0.0.0.0") == "127.0.0.1" and cmdline.connect_host("::") == "::1"
    for bad in ("", "not an address!", "1.2.3.4,$x"):
        with pytest.raises(FluxopsError) as err:
            cmdline.parse_listen(bad)
        assert err.value.code == "comfy.bad_listen"


def test_generated_extra_model_paths_is_read_by_comfyui_and_fluxops_alike(tmp_path: Path) -> None:
    models = tmp_path / "models dir"  # a space, to check quoting
    (models / "unet").mkdir(parents=True)
    (models / "unet" / "a.safetensors").write_bytes(b"x")
    (models / "text_encoders").mkdir()
    (models / "text_encoders" / "t5.safetensors").write_bytes(b"x")
    yaml_file = cmdline.write_extra_paths(tmp_path / "state" / "comfy" / "extra_model_paths.yaml", models)
    comfy = FolderPaths(tmp_path / "ComfyUI", tmp_path / "ComfyUI" / "output")
    comfy.load_extra_yaml(yaml_file)  # the fake's copy of ComfyUI's own loader
    assert comfy.paths["diffusion_models"][:2] == [str(models / "unet"), str(models / "diffusion_models")]
    assert comfy.files("diffusion_models") == ["a.safetensors"]
    assert comfy.files("text_encoders") == ["t5.safetensors"]
    ours = {(p.folder, p.path) for p in search_paths(tmp_path / "elsewhere", [yaml_file])}
    assert ("vae", models / "vae") in ours and ("text_encoders", models / "clip") in ours


def test_models_outside(tmp_path: Path) -> None:
    comfy = tmp_path / "ComfyUI"
    (comfy / "models").mkdir(parents=True)
    assert not cmdline.models_outside(comfy, comfy / "models")
    assert not cmdline.models_outside(comfy, None)
    assert cmdline.models_outside(comfy, tmp_path / "srv")
    (tmp_path / "link").symlink_to(comfy / "models")
    assert not cmdline.models_outside(comfy, tmp_path / "link")


def _section(title: str) -> list[str]:
    text = (DATA / "comfyui" / "launcher_failures.txt").read_text(encoding="utf-8")
    block = text.split(f"### {title}")[1].split("###")[0]
    return block.strip().splitlines()[1:]


def test_classify_the_recorded_launcher_failures() -> None:
    assert classify(_section("second server on an occupied port"), 1).code == "comfy.port_in_use"
    custom = _section("--base-directory without custom_nodes/")
    custom = [line.split("  (raised from")[0] for line in custom]
    assert classify(custom, 1).code == "comfy.custom_nodes_missing"
    assert (
        classify(_section("extra_model_paths.yaml with a YAML list"), 1).code == "comfyui.extra_paths_invalid"
    )


def test_classify_ignores_non_fatal_import_errors_of_a_healthy_log() -> None:
    startup = (DATA / "comfyui" / "startup_log.txt").read_text(encoding="utf-8").splitlines()
    healthy_part = startup[: startup.index("Starting server")]
    assert any("ModuleNotFoundError" in line for line in healthy_part)
    # only the last exception decides: here a CUDA failure after the torchaudio noise
    cause = classify(
        [
            *healthy_part,
            "Traceback (most recent call last):",
            "AssertionError: Torch not compiled with CUDA enabled",
        ],
        1,
    )
    assert cause.code == "comfy.cuda_error"
    usage = ["usage: main.py [-h] [--listen [IP]]", "main.py: error: argument --port: invalid int value: 'x'"]
    assert classify(usage, 2).code == "comfy.bad_argument"
    assert classify(["Killed"], -9).code == "comfy.start_failed"


def test_log_rotation_and_tail(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    for run in range(7):
        path = logfile.rotate(logs, keep=3)
        path.write_text("".join(f"run {run} line {i}\n" for i in range(1000)))
    assert sorted(p.name for p in logs.iterdir()) == [
        "comfyui.log",
        "comfyui.log.1",
        "comfyui.log.2",
        "comfyui.log.3",
    ]
    assert logfile.tail(logs / "comfyui.log", 2) == ["run 6 line 998", "run 6 line 999"]
    assert logfile.tail(logs / "comfyui.log.3", 1) == ["run 3 line 999"]
    assert len(logfile.tail(logs / "comfyui.log", 5000)) == 1000
    assert logfile.tail(logs / "nothing.log", 3) == []
    assert logfile.tail(logs / "comfyui.log", 1, end=len("run 6 line 0\n")) == ["run 6 line 0"]


def test_follow_sees_new_lines_and_a_rotated_log(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    path = logfile.rotate(logs)
    path.write_text("old\n")
    following, done = threading.Event(), threading.Event()

    def writer() -> None:
        following.wait(30)
        with path.open("a") as fh:
            fh.write("first\n")
        new = logfile.rotate(logs)  # a new start: the old file moves away, a new one appears
        new.write_text("second run\n")
        done.set()

    def keep_going() -> bool:
        following.set()  # follow() has the file open now
        return not done.is_set()

    thread = threading.Thread(target=writer)
    thread.start()
    seen = list(logfile.follow(path, keep_going, offset=len("old\n"), poll=0.01))
    thread.join()
    assert seen == ["first", "second run"]


def test_trim_rotates_a_large_log_that_is_still_being_written(tmp_path: Path) -> None:
    path = logfile.rotate(tmp_path / "logs")
    with open(path, "ab", buffering=0) as server_output:  # how the detached ComfyUI holds it
        server_output.write(b"x" * 100 + b"\n")
        assert not logfile.trim(path, max_bytes=1000)
        server_output.write(b"y" * 1000 + b"\n")
        assert logfile.trim(path, max_bytes=1000, keep=3)
        server_output.write(b"after\n")  # append mode: continues at the new end, no hole
    assert path.read_bytes() == b"after\n"
    assert (path.parent / "comfyui.log.1").stat().st_size == 1102


def test_follow_continues_after_a_trim(tmp_path: Path) -> None:
    path = logfile.rotate(tmp_path / "logs")
    path.write_text("z" * 50 + "\n")
    following, done = threading.Event(), threading.Event()

    def writer() -> None:
        following.wait(30)
        with open(path, "ab", buffering=0) as fh:
            fh.write(b"before trim\n")
            logfile.trim(path, max_bytes=10)
            fh.write(b"after trim\n")
        done.set()

    def keep_going() -> bool:
        following.set()
        return not done.is_set()

    thread = threading.Thread(target=writer)
    thread.start()
    seen = list(logfile.follow(path, keep_going, poll=0.01))
    thread.join()
    assert seen[-1] == "after trim"
