"""Probes of this machine for the doctor and the launcher: NVML (GPUs), CUDA environment variables, ComfyUI's
torch, and the VRAM budget of the workflow."""
