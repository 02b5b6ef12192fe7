"""Everything that touches ComfyUI: its install, its process, its API."""
