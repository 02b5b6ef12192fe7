"""fluxops: provision, verify, diagnose and run the FLUX.1 Krea + Turbo LoRA workflow in ComfyUI."""

__version__ = "0.1.0"
