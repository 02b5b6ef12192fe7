"""Running the production workflow: the API-format template and presets, the plan (one job per prompt),
checks against the server's node specs, the runner (submit, progress, images, sidecars), the health check,
and reaching or starting a server."""
