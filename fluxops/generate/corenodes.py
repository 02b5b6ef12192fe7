"""The number ranges of ComfyUI's core nodes, shipped with fluxops so that values that can never be valid are
refused before any server is contacted (`fluxops generate --steps -3` needs no ComfyUI to be wrong).

Copied from ``/object_info`` of ComfyUI v0.3.64 (the ``min``/``max`` of each INT and FLOAT input, as
`nodes.py` and `comfy_extras/nodes_flux.py` declare them, https://github.com/comfyanonymous/ComfyUI); these
ranges have not changed across releases. Choices (samplers, schedulers, model files) are not shipped: newer
releases add samplers and each server lists its own files, so only the server's ``/object_info`` decides
those. When a server answers, its own specs are checked too (`fluxops.generate.run.check_against_server`).
"""

from __future__ import annotations

from fluxops.generate.nodespec import InputSpec, NodeSpec

SEED_MAX = 18446744073709551615
Range = tuple[str, float, float]  # (INT or FLOAT, min, max)
_LATENT: dict[str, Range] = {"width": ("INT", 16, 16384), "height": ("INT", 16, 16384),
                             "batch_size": ("INT", 1, 4096)}
_SAMPLER = {"steps": ("INT", 1, 10000), "cfg": ("FLOAT", 0.0, 100.0)}

# class -> input -> (type, min, max)
RANGES: dict[str, dict[str, Range]] = {
    "KSampler": {"seed": ("INT", 0, SEED_MAX), **_SAMPLER, "denoise": ("FLOAT", 0.0, 1.0)},
    "KSamplerAdvanced": {"noise_seed": ("INT", 0, SEED_MAX), **_SAMPLER, "start_at_step": ("INT", 0, 10000),
                         "end_at_step": ("INT", 0, 10000)},
    "EmptyLatentImage": _LATENT,
    "EmptySD3LatentImage": _LATENT,
    "LoraLoader": {"strength_model": ("FLOAT", -100.0, 100.0), "strength_clip": ("FLOAT", -100.0, 100.0)},
    "LoraLoaderModelOnly": {"strength_model": ("FLOAT", -100.0, 100.0)},
    "FluxGuidance": {"guidance": ("FLOAT", 0.0, 100.0)},
    "ModelSamplingFlux": {"max_shift": ("FLOAT", 0.0, 100.0), "base_shift": ("FLOAT", 0.0, 100.0),
                          "width": ("INT", 16, 16384), "height": ("INT", 16, 16384)},
}


def core_specs() -> dict[str, NodeSpec]:
    """Node specs holding only these ranges (every input optional, no outputs): `check_graph` with them finds
    out-of-range and non-numeric values and nothing else worth reporting (keep its INVALID_VALUE problems)."""
    return {cls: NodeSpec(cls, {name: InputSpec(name, kind, None, {"min": low, "max": high}, False)
                                for name, (kind, low, high) in inputs.items()}, (), False)
            for cls, inputs in RANGES.items()}
