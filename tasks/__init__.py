"""Prefect tasks: thin wrappers adding retries, logging and state to one library call each.

Every flow imports its tasks from this package, so importing it turns on the redaction of secrets
from every log line of the flow's process before the flow starts, and the reading of keys from
Prefect Secret blocks (a worker's flow run loads the
flow file by path, not through the `flows` package).
"""

from tasks.secrets import read_secret_block
from vectorflow.secrets import install_redaction, use_block_reader

install_redaction()
use_block_reader(read_secret_block)  # keys missing from the environment: Prefect Secret blocks
