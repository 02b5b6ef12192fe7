"""A fake ComfyUI (v0.3.64 behaviour) for tests: a real process speaking the real HTTP/WebSocket API.

`install.make_comfyui_dir(path)` makes a ComfyUI folder whose main.py runs it; `faults.py` lists the
FAKE_COMFYUI_* variables that inject start-up faults; `exec_faults.py` the execution faults; `release.py` makes
it behave like a current release instead (FAKE_COMFYUI_RELEASE=0.38: jobs API, lowercase-UUID prompt ids, several
devices, extra /object_info fields, binary previews); `app.py` explains how to add routes.
"""
