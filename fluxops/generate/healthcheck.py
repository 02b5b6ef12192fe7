"""The health check's verdict on the image `generate --check` got back: the requested size, not blank."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fluxops.errors import FluxopsError
from fluxops.generate.imagefiles import measure_png

# Mean per-channel pixel variance below which an image counts as blank. A flat image scores 0, a photo
# hundreds to thousands; 25 (a standard deviation of 5 levels out of 255) leaves room for near-black frames
# with sensor-like noise while catching the all-black / all-grey output of a broken model or VAE.
VARIANCE_FLOOR = 25.0


@dataclass(frozen=True)
class Verdict:
    image: str
    width: int
    height: int
    expected_width: int
    expected_height: int
    variance: float
    floor: float
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed, "variance": round(self.variance, 2)}


def assess(path: Path, width: int, height: int, floor: float = VARIANCE_FLOOR) -> Verdict:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FluxopsError("generate.check_failed", f"the health check image {path} cannot be read: "
                           f"{exc.strerror}") from exc
    stats = measure_png(data)
    failures = []
    if (stats.width, stats.height) != (width, height):
        failures.append(f"image is {stats.width}x{stats.height}, expected {width}x{height}")
    if stats.variance < floor:
        failures.append(f"image is blank (pixel variance {stats.variance:.1f} < {floor:g})")
    return Verdict(str(path), stats.width, stats.height, width, height, stats.variance, floor, failures)
