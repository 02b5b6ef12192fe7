"""`--cluster`: generate, setup and doctor on every GPU of a box or a fleet, on Ray Core (the `cluster` extra).

Ray is imported only here, and only when a command runs with `--cluster` (`runtime.import_ray`), so every other
command starts without it."""
