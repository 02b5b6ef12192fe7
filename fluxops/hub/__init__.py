"""Getting the files from Hugging Face: tokens, the Hub seam (huggingface_hub), preflight, the resumable
segmented downloader and its partial-file state, and `setup` (provision)."""
