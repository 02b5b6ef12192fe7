"""The error type every core module raises, and the one registry of error codes.

A code is stable (scripts and the JSON output key on it), has a meaning, and a default hint naming the next
step. Core modules raise ``FluxopsError(code, message, hint=...)``; the CLI prints one line plus the hint and
exits with the error's exit code. ``tests/test_errors.py`` checks the registry both ways.
"""

from __future__ import annotations

from dataclasses import dataclass


class ExitCode:
    OK = 0
    FAILURE = 1  # something was checked and found wrong, or an operation failed
    USAGE = 2  # bad command line, bad manifest or config: fix the input and run again
    INTERRUPTED = 130  # Ctrl-C


@dataclass(frozen=True)
class ErrorSpec:
    code: str
    meaning: str
    hint: str | None
    exit_code: int = ExitCode.FAILURE


_SPECS = [
    # input: manifest, config, command line
    ErrorSpec("manifest.unreadable", "the manifest file cannot be read", "check the path given to --manifest",
              ExitCode.USAGE),
    ErrorSpec("manifest.invalid", "the manifest is not valid", "see docs/manifest.md for the format",
              ExitCode.USAGE),
    ErrorSpec("config.invalid", "the config file or a setting is not valid",
              "run `fluxops config` to see every setting and where it came from", ExitCode.USAGE),
    ErrorSpec("models_dir.unknown", "no models directory is configured",
              "pass --models-dir DIR or --comfyui-dir DIR (or set FLUXOPS_MODELS_DIR)", ExitCode.USAGE),
    ErrorSpec("models_dir.not_a_dir", "the models directory exists but is not a directory",
              "point --models-dir at ComfyUI's models folder", ExitCode.USAGE),
    ErrorSpec("models_dir.unreachable", "the models directory cannot be reached or created",
              "check the path and its permissions, or point --models-dir at another folder", ExitCode.USAGE),
    ErrorSpec("comfyui.extra_paths_invalid", "ComfyUI's extra_model_paths.yaml cannot be used",
              "fix the yaml: each folder takes one path per line in a single string, not a YAML list"),
    # files
    ErrorSpec("verify.fix_blocked", "a misplaced file could not be moved into place",
              "move it by hand, or remove the file that is in the way"),
    # setup / downloads (each feature adds its codes in its own section below)
    ErrorSpec("state.locked", "another fluxops process holds the lock (setup per models dir, maintain per "
              "state dir)", "wait for it to finish, then run again"),
    ErrorSpec("hub.token_invalid", "the Hub refused the Hugging Face token",
              "create a read token at https://huggingface.co/settings/tokens and set HF_TOKEN (or --token)"),
    ErrorSpec("hub.gated", "the repo is gated: its licence must be accepted and a token given",
              "accept the licence on the repo page, then set HF_TOKEN"),
    ErrorSpec("hub.repo_not_found", "the repo does not exist, or is private to others",
              "check the repo id in the manifest"),
    ErrorSpec("hub.revision_not_found", "the revision (branch or commit) does not exist in the repo",
              "check the revision in the manifest"),
    ErrorSpec("hub.entry_not_found", "the file does not exist in the repo at that revision",
              "check the path and revision in the manifest"),
    ErrorSpec("hub.upstream_changed", "the Hub serves a different size or sha256 than the manifest pins",
              "the upstream file changed: update the manifest (size and sha256) only if you trust the new file"),
    ErrorSpec("hub.unreachable", "the Hub could not be reached", "check the network, proxy and HF_ENDPOINT"),
    ErrorSpec("hub.http_error", "the Hub answered with an unexpected HTTP error", "try again later"),
    ErrorSpec("hub.offline", "HF_HUB_OFFLINE is set but files are missing",
              "unset HF_HUB_OFFLINE (or copy the files in) and run `fluxops setup` again"),
    ErrorSpec("setup.no_source", "no source in the manifest could serve the file",
              "see the reasons above for each source"),
    ErrorSpec("setup.disk_full", "not enough free disk space for the download",
              "free some space on the models disk (partial downloads are kept), then run `fluxops setup` again"),
    ErrorSpec("setup.dest_blocked", "something that is not a regular file (a folder, a link, a socket) is "
              "where a model file belongs; it was left as it is",
              "move it away yourself (fluxops never moves or deletes it), then run `fluxops setup` again"),
    ErrorSpec("setup.corrupt_present", "a file at its destination is corrupt and was left as it is",
              "fluxops setup --repair"),
    ErrorSpec("setup.interrupted", "the download was interrupted; what arrived is kept for the resume",
              "run `fluxops setup` again to resume", ExitCode.INTERRUPTED),
    ErrorSpec("download.hash_mismatch", "the bytes served do not match the pinned sha256; nothing was placed",
              "try again later or use another source; report it if it persists"),
    ErrorSpec("download.failed", "the download kept failing after retries (what arrived is kept)",
              "check the network and run `fluxops setup` again to resume"),
    ErrorSpec("download.write_failed", "the downloaded bytes could not be written to disk",
              "check the models disk (permissions, space), then run `fluxops setup` again"),
    # comfy (ComfyUI process lifecycle)
    ErrorSpec("comfy.unreachable", "no ComfyUI server answers at the address",
              "start one with `fluxops comfy start` (generate starts it itself given --comfyui-dir), or pass the "
              "right --host/--port"),
    ErrorSpec("comfy.timeout", "the ComfyUI server did not answer in time",
              "it may be busy; try again, or read `fluxops comfy logs`"),
    ErrorSpec("comfy.http_error", "the ComfyUI server answered with an HTTP error",
              "read the server's log: `fluxops comfy logs`"),
    ErrorSpec("comfy.bad_response", "the server's answer is not what ComfyUI sends",
              "check --host/--port: another program may be answering on that port"),
    ErrorSpec("comfy.unknown_model_folder", "ComfyUI has no model folder of that name",
              "use the canonical names: diffusion_models, text_encoders, vae, loras, checkpoints"),
    ErrorSpec("comfy.dir_unknown", "no ComfyUI folder is configured",
              "install one with `fluxops comfy install`, or pass --comfyui-dir DIR for an existing one "
              "(or set FLUXOPS_COMFYUI_DIR, or comfyui_dir in the config file)",
              ExitCode.USAGE),
    ErrorSpec("comfy.not_installed", "the ComfyUI folder has no main.py",
              "point --comfyui-dir at the folder that holds ComfyUI's main.py", ExitCode.USAGE),
    ErrorSpec("comfy.python_missing", "ComfyUI's Python interpreter was not found",
              "pass --comfyui-python PATH (the python of the venv ComfyUI runs in)", ExitCode.USAGE),
    ErrorSpec("comfy.bad_listen", "the --listen address is not valid",
              "use an IP address such as 127.0.0.1 (or 0.0.0.0 for all interfaces)", ExitCode.USAGE),
    ErrorSpec("comfy.bad_argument", "ComfyUI does not accept an argument passed to it",
              "check the --comfy-arg values against `python main.py --help` in the ComfyUI folder",
              ExitCode.USAGE),
    ErrorSpec("comfy.port_in_use", "the port is held by another program",
              "stop that program, or start on another port: `fluxops comfy start --port N`"),
    ErrorSpec("comfy.already_running", "a ComfyUI started by fluxops already runs elsewhere",
              "stop it first: `fluxops comfy stop`"),
    ErrorSpec("comfy.missing_module", "ComfyUI's Python lacks a module it needs",
              "install ComfyUI's requirements into its Python: pip install -r requirements.txt"),
    ErrorSpec("comfy.cuda_error", "ComfyUI could not start on the GPU",
              "run `fluxops doctor` (driver, CUDA and torch versions); or start on the CPU with "
              "--comfy-arg=--cpu"),
    ErrorSpec("comfy.custom_nodes_missing", "ComfyUI's base directory has no custom_nodes folder",
              "create the custom_nodes folder, or pass --comfy-arg=--disable-all-custom-nodes"),
    ErrorSpec("comfy.start_failed", "ComfyUI exited during start-up",
              "read the whole log: `fluxops comfy logs -n 200`"),
    ErrorSpec("comfy.not_ready", "ComfyUI did not become ready in time",
              "read `fluxops comfy logs`; a slow first start may need a longer --timeout"),
    ErrorSpec("comfy.unresponsive", "the ComfyUI fluxops started runs but does not answer",
              "read `fluxops comfy logs`; if it stays like this, stop it with `fluxops comfy stop` and start again"),
    ErrorSpec("comfy.not_ours", "the server on the port was not started by fluxops",
              "stop it the way it was started; fluxops only stops the ComfyUI it started"),
    ErrorSpec("comfy.stop_failed", "the ComfyUI process could not be stopped",
              "stop it by hand (kill PID), then run `fluxops comfy status`"),
    ErrorSpec("comfy.busy", "another fluxops command is starting or stopping ComfyUI",
              "wait for it to finish, then run the command again"),
    ErrorSpec("comfy.no_log", "there is no ComfyUI log yet", "start ComfyUI first: `fluxops comfy start`"),
    # comfy install (a pinned ComfyUI, its venv, the torch build for this machine)
    ErrorSpec("install.git_missing", "git is not installed", "install git, then run the command again"),
    ErrorSpec("install.git_failed", "a git command failed (clone, fetch or checkout)",
              "check the network and the git URL in the manifest's [comfyui] table"),
    ErrorSpec("install.pin_mismatch", "the pinned tag resolves to another commit than the manifest pins",
              "the tag was moved upstream: keep the install you have, or pin the new commit in the manifest only "
              "if you trust it"),
    ErrorSpec("install.dir_not_empty", "the install folder exists and is not a ComfyUI git checkout",
              "choose another folder (fluxops comfy install DIR), or empty this one", ExitCode.USAGE),
    ErrorSpec("install.needs_upgrade", "the folder holds a ComfyUI that differs from what would be installed",
              "run `fluxops comfy install --upgrade` to bring it to the manifest's pin and this machine's torch; "
              "or use it as it is with --comfyui-dir"),
    ErrorSpec("install.local_changes", "the ComfyUI checkout has local changes",
              "commit or stash them, or pass --force (they are kept in `git stash`)"),
    ErrorSpec("install.python_unsupported", "the Python interpreter is one ComfyUI or torch does not support",
              "pass --python PATH with a supported Python (3.10 to 3.14)", ExitCode.USAGE),
    ErrorSpec("install.venv_failed", "the venv could not be created",
              "check the disk and the interpreter, or pass --python PATH"),
    ErrorSpec("install.pip_failed", "a pip step failed", "read pip's lines above; run the command again to resume"),
    ErrorSpec("install.torch_unexpected", "pip installed another torch build than the one chosen",
              "run `fluxops comfy install --upgrade` again; with --torch-index, check what that index serves"),
    ErrorSpec("install.no_torch_build", "no PyTorch build runs on this machine's driver and GPUs",
              "update the NVIDIA driver, or choose a build yourself with --torch-index URL (or --cpu)"),
    ErrorSpec("install.interrupted", "the install was interrupted; what was done is kept",
              "run the same command again to finish it", ExitCode.INTERRUPTED),
    # doctor
    ErrorSpec("doctor.unknown_check", "a check id given to `fluxops doctor` does not exist",
              "run `fluxops doctor --list` to see the check ids", ExitCode.USAGE),
    ErrorSpec("doctor.report_unwritable", "the --report file cannot be written",
              "choose a writable path for --report"),
    # generate (ComfyUI API client, workflows)
    ErrorSpec("workflow.unreadable", "the workflow file cannot be read", "check the path given to --workflow",
              ExitCode.USAGE),
    ErrorSpec("workflow.invalid", "the workflow is not a usable API-format graph",
              "export it from ComfyUI with the menu Workflow > Export (API)", ExitCode.USAGE),
    ErrorSpec("workflow.ui_format", "the workflow is in ComfyUI's UI format, not the API format",
              "in ComfyUI use the menu Workflow > Export (API) and pass that file to --workflow", ExitCode.USAGE),
    ErrorSpec("workflow.role_missing", "the workflow has no node with a title fluxops needs",
              "title the node in ComfyUI (right-click > Title) and export the API format again", ExitCode.USAGE),
    ErrorSpec("workflow.invalid_value", "a parameter is outside what the node accepts",
              "fix the value named above and run again", ExitCode.USAGE),
    ErrorSpec("workflow.node_missing", "the ComfyUI server lacks a node class the workflow uses",
              "update ComfyUI (git pull and pip install -r requirements.txt in its folder), or install the "
              "custom node that provides it"),
    ErrorSpec("workflow.model_missing", "a model file the workflow loads is not in ComfyUI's list",
              "run `fluxops setup`; `fluxops verify` finds a file that is in the wrong folder"),
    ErrorSpec("generate.needs_yes", "the run would take more than a day: it needs --yes",
              "lower --count (or --batch), or pass --yes to run it anyway", ExitCode.USAGE),
    ErrorSpec("generate.rejected", "ComfyUI refused the prompt (400 with node_errors)",
              "fix the inputs listed above; `fluxops generate --help` names the option for each"),
    ErrorSpec("generate.out_of_memory", "the GPU ran out of memory while running the workflow",
              "use --batch 1 and a smaller --width/--height, start ComfyUI with --lowvram, or free VRAM"),
    ErrorSpec("generate.model_load_failed", "ComfyUI could not load a model file",
              "run `fluxops verify` (a corrupt or truncated file shows there), then `fluxops setup`"),
    ErrorSpec("generate.execution_failed", "a node raised an error while the workflow ran",
              "see the server log: `fluxops comfy logs`"),
    ErrorSpec("generate.interrupted", "the prompt was interrupted on the server by someone else",
              "run again; check who else uses this ComfyUI (`fluxops comfy status`)"),
    ErrorSpec("generate.server_gone", "ComfyUI stopped answering while the workflow ran",
              "see why with `fluxops comfy logs`, then start it again with `fluxops comfy start`"),
    ErrorSpec("generate.no_images", "the prompt finished but produced no image",
              "check that the workflow's Save Image node is connected"),
    ErrorSpec("generate.save_failed", "an image could not be written to the output folder",
              "free disk space or pass --output DIR on a disk with room"),
    ErrorSpec("generate.check_failed", "the health check's image is missing, the wrong size or blank",
              "run `fluxops doctor` and `fluxops verify`; look at the image in the output folder"),
    # cluster (`--cluster` on generate, setup and doctor; the optional `cluster` extra)
    ErrorSpec("cluster.not_installed", "--cluster needs Ray, which is not installed",
              'pip install "fluxops[cluster]"', ExitCode.USAGE),
    ErrorSpec("cluster.unreachable", "the Ray cluster could not be reached or started",
              "check --ray-address (or RAY_ADDRESS) and that `ray status` answers there"),
    ErrorSpec("cluster.no_gpus", "the Ray cluster has no GPU to run ComfyUI on",
              "start Ray on the GPU hosts (`ray start --head`, `ray start --address=HEAD:6379`), "
              "or run without --cluster"),
    ErrorSpec("cluster.prompts_unreadable", "the --prompts file cannot be read or holds no prompt",
              "one prompt per line (.txt), or one JSON object per line with a \"prompt\" (.jsonl)", ExitCode.USAGE),
    ErrorSpec("cluster.bad_option", "an option that does not go with --cluster (or needs it) was given",
              "see `fluxops generate --help` and docs/cluster.md", ExitCode.USAGE),
    ErrorSpec("cluster.jobs_failed", "some jobs of a `generate --cluster` run failed",
              "see each job's error in --output/run.jsonl; run the same command again to retry only those"),
    # maintain
    ErrorSpec("schedule.tool_missing", "the scheduler's tool (crontab, systemctl, schtasks) is not available",
              "install cron (e.g. `apt-get install cron`), or use --systemd, or --print and add the job by hand"),
    ErrorSpec("schedule.failed", "the scheduler refused the job", "run with --print and install the job by hand"),
]

REGISTRY: dict[str, ErrorSpec] = {spec.code: spec for spec in _SPECS}


class FluxopsError(Exception):
    """An expected failure with a stable code, a one-line message and a hint naming the fix."""

    def __init__(self, code: str, message: str, hint: str | None = None, exit_code: int | None = None):
        spec = REGISTRY.get(code)
        if spec is None:  # a programming error: every code must be registered
            raise ValueError(f"unregistered error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint if hint is not None else spec.hint
        self.exit_code = exit_code if exit_code is not None else spec.exit_code

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "hint": self.hint}
