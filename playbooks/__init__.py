"""The playbook library riskops ships: installed as the package riskops.playbooks.library (see pyproject.toml)."""
