"""The work of `generate --cluster`: the prompts (`--prompt`/`--count` or a `--prompts` file), turned into jobs of
one image each, every value checked before anything is sent (single-box generate's own plan checks), a bad
entry failing alone.

A job's identity (`key`) comes from what the user asked for (the entry's line, its prompt and overrides, the
image's number within `--count`, an explicit seed), never from a random seed: a rerun into the same `--output`
finds the jobs already done in `run.jsonl` by it, and reuses the seed recorded there for the others. Its
`prompt_id` is derived from the key (a lowercase UUID, the form ComfyUI accepts as a client-chosen id), so a
retry asks a server's `/history` for the very prompt it may already have run.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from fluxops.errors import FluxopsError
from fluxops.generate.plan import SEED_LIMIT, GenerateRequest, plan, refuse_more_than_a_day
from fluxops.generate.workflow import DEFAULT_PRESET, Overrides, Params

# ComfyUI prompt ids for cluster jobs: uuid5 in a namespace of fluxops's own (any fixed UUID would do).
PROMPT_ID_NAMESPACE = uuid.UUID("6c1f0b8e-3d2a-4a53-9a57-2f8e3c1b7d10")
_OVERRIDE_NAMES = {f.name for f in fields(Overrides)}
_ENTRY_NAMES = _OVERRIDE_NAMES | {"seed", "preset", "count"}


@dataclass(frozen=True)
class Entry:
    """One prompt as the user gave it: a line of the prompts file, or the command line."""

    line: int  # 1-based line of the file; 0 for the command line
    overrides: Overrides
    preset: str = DEFAULT_PRESET
    seed: int | None = None
    count: int = 1
    error: str | None = None  # the entry itself is unreadable (bad JSON, unknown key)


@dataclass
class ClusterJob:
    key: str  # stable across reruns of the same command
    prompt: str
    seed: int
    line: int
    graph: dict[str, Any] = field(default_factory=dict)
    params: Params | None = None
    error: str | None = None  # a value check failed: the job fails alone, nothing is sent
    attempts: int = 0

    @property
    def prompt_id(self) -> str:
        return str(uuid.uuid5(PROMPT_ID_NAMESPACE, self.key))


def read_prompts(path: Path, count: int, base: Overrides, preset: str) -> list[Entry]:
    """`.jsonl`: one object per line, the command line's names (`prompt`, `seed`, `preset`, `steps`, ...);
    anything else: one prompt per line, blank lines and `#` comments skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FluxopsError("cluster.prompts_unreadable", f"--prompts {path}: {exc}") from None
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if path.suffix.lower() == ".jsonl":
            entries.append(_json_entry(number, line, count, base, preset))
        else:
            entries.append(Entry(number, _merged(base, {"prompt": line}), preset, None, count))
    if not entries:
        raise FluxopsError("cluster.prompts_unreadable", f"--prompts {path} holds no prompt")
    return entries


def _merged(base: Overrides, values: dict[str, Any]) -> Overrides:
    return Overrides(**{**{f.name: getattr(base, f.name) for f in fields(Overrides)},
                        **{k: v for k, v in values.items() if k in _OVERRIDE_NAMES}})


def _json_entry(number: int, line: str, count: int, base: Overrides, preset: str) -> Entry:
    try:
        values = json.loads(line)
    except json.JSONDecodeError as exc:
        return Entry(number, base, preset, error=f"line {number} is not JSON ({exc.msg})")
    if not isinstance(values, dict) or not isinstance(values.get("prompt"), str):
        return Entry(number, base, preset, error=f"line {number} is not an object with a \"prompt\" string")
    unknown = sorted(set(values) - _ENTRY_NAMES)
    if unknown:
        return Entry(number, base, preset, error=f"line {number}: unknown key(s) {', '.join(unknown)} (known: "
                     f"{', '.join(sorted(_ENTRY_NAMES))})")
    seed, entry_count = values.get("seed"), values.get("count", count)
    if (seed is not None and not isinstance(seed, int)) or not isinstance(entry_count, int):
        return Entry(number, base, preset, error=f"line {number}: seed and count must be whole numbers")
    return Entry(number, _merged(base, values), str(values.get("preset", preset)), seed, entry_count)


def job_key(entry: Entry, image: int) -> str:
    identity = {"line": entry.line, "overrides": {f.name: getattr(entry.overrides, f.name) for f in
                                                  fields(Overrides)},
                "preset": entry.preset, "seed": entry.seed, "image": image}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def build_jobs(entries: list[Entry], workflow: Path | None, manifest: Path | None,
               known_seeds: dict[str, int] | None = None, yes: bool = False) -> list[ClusterJob]:
    """One job per image; each entry planned with generate's own checks (ranges; more than a day of work for
    one entry's --count needs `yes`). A job whose values are bad carries its error instead of a graph."""
    known = known_seeds or {}
    jobs: list[ClusterJob] = []
    for entry in entries:
        keys = [job_key(entry, i) for i in range(max(entry.count, 1))]
        prompt = entry.overrides.prompt or ""
        if entry.error is not None:
            jobs.extend(ClusterJob(key, prompt, 0, entry.line, error=entry.error) for key in keys)
            continue
        base = entry.seed if entry.seed is not None else secrets.randbelow(2**48)
        for i, key in enumerate(keys):
            job = _planned(key, entry, known.get(key, (base + i) % SEED_LIMIT), workflow, manifest)
            if i == 0 and job.params is not None and not yes:
                refuse_more_than_a_day(job.params, entry.count)
            jobs.append(job)
    return jobs


def _planned(key: str, entry: Entry, seed: int, workflow: Path | None, manifest: Path | None) -> ClusterJob:
    job = ClusterJob(key, entry.overrides.prompt or "", seed, entry.line)
    try:
        request = GenerateRequest(preset=entry.preset, overrides=entry.overrides, seed=seed, count=1,
                                  workflow=workflow, yes=True)  # one image: the day check is build_jobs's
        one = plan(request, manifest).jobs[0]
    except FluxopsError as exc:
        if exc.code in ("manifest.unreadable", "manifest.invalid", "workflow.unreadable", "workflow.invalid",
                        "workflow.role_missing", "workflow.ui_format"):
            raise  # the whole run's input is wrong, not this entry
        where = f"line {entry.line}: " if entry.line else ""
        job.error = f"{where}{exc.message}"
        return job
    job.prompt = one.params.prompt
    job.graph, job.params = one.graph, one.params
    return job
