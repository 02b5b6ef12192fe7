"""`fluxops comfy install`: a pinned ComfyUI release, its own venv, and the torch build this machine can run.

`plan` looks at the target folder and says what each step would do (that is all `--dry-run` does);
`run` carries the steps out: `gitrepo` (the checkout), `pyenv` (interpreter, venv, pip), `lockfile` (what was
done, in `<ComfyUI>/fluxops-lock.json`). Every step checks what is already there, so a rerun after Ctrl-C or a
kill -9 finishes the job and a rerun of a finished install does nothing.
"""
