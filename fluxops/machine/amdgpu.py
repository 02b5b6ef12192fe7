"""Is there an AMD GPU that ROCm's PyTorch can use? (Linux only; read from sysfs, nothing is loaded.)

PyTorch's ROCm wheels carry ROCm's user-space libraries; what they need from the host is the amdgpu kernel
driver's compute interface: the /dev/kfd device, and a GPU node in the KFD topology whose `gfx_target_version`
is not 0 (CPU nodes report 0). That topology is what ROCm's own rocminfo reads:
https://github.com/ROCm/rocminfo , https://docs.kernel.org/gpu/amdgpu/ .
"""

from __future__ import annotations

from pathlib import Path

TOPOLOGY = "sys/class/kfd/kfd/topology/nodes"


def amd_rocm_present(root: Path = Path("/")) -> bool:
    if not (root / "dev" / "kfd").exists():
        return False
    for properties in sorted((root / TOPOLOGY).glob("*/properties")):
        try:
            lines = properties.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            key, _, value = line.partition(" ")
            if key == "gfx_target_version" and value.strip() not in ("", "0"):
                return True
    return False
