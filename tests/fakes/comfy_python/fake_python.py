"""A stand-in for ComfyUI's Python interpreter, answering fluxops's torch queries without torch.

Invoked as `python -c SCRIPT QUERY` (the way fluxops.machine.torchprobe calls an interpreter). QUERY is "locate"
(where torch/version.py is: the fake's own torch dir, $FAKE_TORCH_DIR) or "query" (what importing torch
says). $FAKE_TORCH_MODE picks the torch it pretends to have: cuda124, cpu, too_new, crash, hang, none.
Each call is appended to $FAKE_TORCH_LOG so tests can count the expensive queries.
"""

import json
import os
import sys
import time

ANSWERS = {
    "cuda124": {
        "torch": "2.5.1+cu124",
        "cuda": "12.4",
        "hip": None,
        "cuda_available": True,
        "device_count": 1,
        "device_name": "NVIDIA GeForce RTX 3090",
        "arch_list": ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"],
        "warnings": [],
    },
    "cpu": {
        "torch": "2.5.1+cpu",
        "cuda": None,
        "hip": None,
        "cuda_available": False,
        "device_count": 0,
        "device_name": None,
        "arch_list": [],
        "warnings": [],
    },
    "too_new": {
        "torch": "2.7.0+cu128",
        "cuda": "12.8",
        "hip": None,
        "cuda_available": False,
        "device_count": 0,
        "device_name": None,
        "warnings": [
            "CUDA initialization: The NVIDIA driver on your system is too old (found version "
            "11080). Please update your GPU driver by downloading and installing a new version"
        ],
    },
}


def main() -> int:
    mode = os.environ.get("FAKE_TORCH_MODE", "cuda124")
    query = sys.argv[-1]
    log = os.environ.get("FAKE_TORCH_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(query + "\n")
    if query == "locate":
        torch_dir = os.environ["FAKE_TORCH_DIR"]
        out: dict[str, object] = {"python": "3.12.3", "executable": sys.argv[0], "torch_version_file": None}
        version_file = os.path.join(torch_dir, "version.py")
        if mode != "none" and os.path.exists(version_file):
            st = os.stat(version_file)
            out.update(torch_version_file=version_file, size=st.st_size, mtime_ns=st.st_mtime_ns)
        print(json.dumps(out))
        return 0
    if mode == "crash":
        sys.stderr.write(
            'Traceback (most recent call last):\n  File "<string>", line 4, in <module>\n'
            "ImportError: libcudnn.so.9: cannot open shared object file: No such file or directory\n"
        )
        return 1
    if mode == "hang":
        time.sleep(300)
        return 0
    print(json.dumps(ANSWERS[mode]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
