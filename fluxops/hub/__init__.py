"""Getting bytes from Hugging Face: tokens, the Hub seam (huggingface_hub), one ranged GET (`rangedget`), the
resumable segmented download built on it (`segments`) and its partial files on disk (`partial`)."""
