"""Secrets in Prefect Secret blocks: the Prefect half of `vectorflow.secrets`.

Tasks read a secret with `resolve(name)` inside the task (never as a parameter); the CLI stores
and lists them (`vectorflow secrets set|list`). Block names are `vectorflow.secrets.SECRETS`'.
"""

from __future__ import annotations

import logging

from pydantic import SecretStr

from vectorflow.secrets import resolve_secret, secret_name

log = logging.getLogger(__name__)


def read_secret_block(block: str) -> str | None:
    """The value of the Prefect Secret block `block`; None when there is no such block."""
    from prefect.blocks.system import Secret

    try:
        value = Secret.load(block).get()
    except ValueError:  # no such block
        return None
    return str(value) if value else None


def resolve(name: str) -> SecretStr | None:
    """Secret `name` from the environment, else its Secret block; None when unset or unreadable.

    An unreachable Prefect API is logged (by exception type only) and counts as unset, so that
    a run without its optional key still works (rule-based playbooks).
    """
    try:
        return resolve_secret(name, read_block=read_secret_block)
    except Exception as exc:  # noqa: BLE001 - the key is optional; the run goes on without it
        _logger().warning(
            "Secret block %s unreadable (%s); no key", secret_name(name).block, type(exc).__name__
        )
        return None


def store_secret(name: str, value: str) -> str:
    """Save `value` as the Secret block of secret `name` (replacing it); the block's name."""
    from prefect.blocks.system import Secret

    block = secret_name(name).block
    Secret(value=value).save(block, overwrite=True)
    return block


def secret_block_exists(block: str) -> bool:
    """Whether the Secret block `block` exists (its value is not read)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_block_document_by_name(
                block, block_type_slug="secret", include_secrets=False
            )
        except ObjectNotFound:
            return False
    return True


def _logger():
    from prefect import get_run_logger
    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:
        return log
