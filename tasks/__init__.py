"""Prefect tasks: thin wrappers adding retries, logging and state to one library call each.

Every flow imports its tasks from this package, so importing it turns on the redaction of secrets
from every log line of the flow's process before the flow starts (a worker's flow run loads the
flow file by path, not through the `flows` package).
"""

from vectorflow.secrets import install_redaction

install_redaction()
