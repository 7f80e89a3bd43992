"""AI-written trading playbooks: the contract, the Grok client, validation, rules and grading."""
