"""Failed and crashed runs posted to a webhook: a Prefect notification block and an automation.

`vectorflow up` calls `configure_notifications` once its server is healthy, with the URL from
`VECTORFLOW_WEBHOOK_URL` or `[notifications] webhook_url`. The server's triggers service then
fires on every `prefect.flow-run.Failed` or `prefect.flow-run.Crashed` event and its actions
service posts `{"text": subject + body}` (what a Slack incoming webhook expects; any webhook
receives the same JSON). The body names the deployment, flow, flow run and state, and the state
message, which lists a run's failed units (flows/ingest.py `final_state`). The URL is kept in
the block's secret values (a Slack URL is a credential), so the UI shows it masked.
"""

from __future__ import annotations

from urllib.parse import urlparse
from uuid import UUID

#: One name for the block and the automation: `up` replaces both each time it starts.
NAME = "vectorflow-failed-runs"
EVENTS = frozenset({"prefect.flow-run.Failed", "prefect.flow-run.Crashed"})
SUBJECT = "VectorFlow: {{ flow_run.name }} {{ flow_run.state.name }}"
BODY = (
    "deployment: {{ deployment.name if deployment else 'none (a run started by hand)' }}\n"
    "flow: {{ flow.name }}\n"
    "flow run: {{ flow_run.name }}\n"
    "state: {{ flow_run.state.name }}\n"
    "message: {{ flow_run.state.message }}\n"
    "{{ flow_run|ui_url }}"
)


def webhook_host(url: str) -> str:
    """The scheme and host of a webhook URL, safe to print (its path may hold a token)."""
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}"


def configure_notifications(webhook_url: str | None, api_url: str) -> UUID | None:
    """Create or update the automation posting failed runs to `webhook_url`; its id.

    Without a URL, an automation left from an earlier `up` is deleted (None). `api_url`: the
    Prefect API, e.g. http://127.0.0.1:4200/api.
    """
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        existing = client.read_automations_by_name(NAME)
        if webhook_url is None:
            for automation in existing:
                client.delete_automation(automation.id)
            return None
        automation = _automation(_save_block(webhook_url))
        if not existing:
            return client.create_automation(automation)
        keep, *extra = existing
        client.update_automation(keep.id, automation)
        for duplicate in extra:
            client.delete_automation(duplicate.id)
        return keep.id


def _save_block(webhook_url: str) -> UUID:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    block = CustomWebhookNotificationBlock(
        name=NAME,
        url="{{webhook_url}}",
        secrets={"webhook_url": webhook_url},
        json_data={"text": "{{subject}}\n{{body}}"},
    )
    return block.save(NAME, overwrite=True)


def _automation(block_id: UUID):
    from prefect.automations import AutomationCore, EventTrigger, Posture, SendNotification

    return AutomationCore(
        name=NAME,
        description="Posts every failed or crashed VectorFlow run to the configured webhook.",
        trigger=EventTrigger(
            expect=set(EVENTS),
            match={"prefect.resource.id": "prefect.flow-run.*"},
            posture=Posture.Reactive,
            threshold=1,
            within=0,
        ),
        actions=[SendNotification(block_document_id=block_id, subject=SUBJECT, body=BODY)],
    )
