"""A fake ComfyUI (v0.3.64 behaviour) for tests: a real process speaking the real HTTP/WebSocket API.

`install.make_comfyui_dir(path)` makes a ComfyUI folder whose main.py runs it; `faults.py` lists the
FAKE_COMFYUI_* variables that inject start-up faults; `app.py` explains how to add routes.
"""
