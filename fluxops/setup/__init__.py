"""`fluxops setup`: plan, preflight (sources, token, disk), download through `fluxops.hub`, verify, place."""
