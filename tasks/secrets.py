"""Secrets in Prefect Secret blocks: the Prefect half of `vectorflow.secrets`.

A flow's process reads secrets missing from the environment from these blocks
(`vectorflow.secrets.resolve_secret`, inside the tasks, never as a parameter: the `tasks`
package installs `read_secret_block` when it is imported); the CLI stores and lists them
(`vectorflow secrets set|list`). Block names are `vectorflow.secrets.SECRETS`'.
"""

from __future__ import annotations

import logging

from vectorflow.secrets import secret_name

log = logging.getLogger(__name__)


def read_secret_block(block: str) -> str | None:
    """The value of the Prefect Secret block `block`; None when there is no such block."""
    from prefect.blocks.system import Secret

    try:
        value = Secret.load(block).get()
    except ValueError:  # no such block
        return None
    return str(value) if value else None


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
