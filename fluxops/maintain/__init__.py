"""The monthly job: the run itself, its reports and history, and its schedule (cron, systemd, schtasks)."""
