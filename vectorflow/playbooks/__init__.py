"""AI-written trading playbooks: the contract, the Grok client, validation, rules and grading.

Kept import-light: `vectorflow.settings` imports `vectorflow.playbooks.config`.
"""
