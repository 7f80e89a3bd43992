"""Prefect tasks: thin wrappers adding retries, logging and state to one library call each."""
