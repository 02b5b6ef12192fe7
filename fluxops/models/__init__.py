"""The model files on disk: the manifest that pins them, where ComfyUI looks, safetensors headers, hashing and
the verification cache, and `verify`."""
