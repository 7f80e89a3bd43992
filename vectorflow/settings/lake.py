"""The `[lake]` section: where the lake is, retention per dataset, tail merging, delete grace.

    [lake]
    url = ""                       # "" = <data dir>/lake; a folder; or s3://bucket/prefix
    merge_files = 8                # this many small files in a period are merged into one
    merge_rows = 50000             # ...where "small" is fewer rows than this
    delete_grace_seconds = 0       # superseded snapshots stay this long (at least 2 s)
    [lake.retention_days]          # compaction deletes older rows; absent = kept forever
    orderbook_levels = 30
    candles = 0                    # 0 also means forever

`VECTORFLOW_LAKE_URL` sets `url`; the lake's storage is opened from it when the settings load
(`vectorflow.config`). An s3:// lake reaches its endpoint through the standard AWS variables
(credentials through the AWS chain, never the settings).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, field_validator

from vectorflow.settings.checks import known

SCHEME = "s3://"

#: Order book levels grow by about 288,000 rows per symbol and market a day at 100 levels a
#: minute: kept 30 days unless configured; everything else is kept forever.
DEFAULT_RETENTION_DAYS: dict[str, float] = {"orderbook_levels": 30.0}

#: The datasets of the lake (`vectorflow.lake.schema.DATASETS`; a test keeps the two equal).
DATASETS: tuple[str, ...] = (
    "candles",
    "orderbook_levels",
    "open_interest",
    "funding_rates",
    "coverage_ranges",
    "signals",
    "trap_events",
    "playbooks",
    "playbook_outcomes",
    "backtest_runs",
    "backtest_trades",
)


def check_lake_url(url: str) -> str:
    """`url` stripped: a folder, or s3://bucket/prefix; ValueError naming a bad URL."""
    url = url.strip()
    if "://" not in url:
        return url
    if not url.startswith(SCHEME):
        raise ValueError(f"lake URL {url!r} is neither a local folder nor s3://bucket/prefix")
    bucket = url[len(SCHEME) :].partition("/")[0]
    if not bucket or any(c in bucket for c in " ?#*"):
        raise ValueError(f"lake URL {url!r} names no bucket (expected s3://bucket/prefix)")
    return url


class LakeSettings(BaseModel):
    """Where the lake is and how it is kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str = Field(
        default="",
        description='Where the lake is: "" for <data dir>/lake, a folder, or s3://bucket/prefix.',
    )
    merge_files: int = Field(
        default=8,
        ge=0,
        description="When a period of a partition holds this many small files, ingest merges "
        "them into one.",
    )
    merge_rows: int = Field(
        default=50_000, ge=0, description="A file with fewer rows than this counts as small."
    )
    delete_grace_seconds: float = Field(
        default=0.0,
        ge=0,
        description="How long a superseded snapshot stays before a later write removes it "
        "(at least 2 s).",
    )
    retention_days: Annotated[dict[str, NonNegativeFloat], known(DATASETS, "dataset")] = Field(
        default_factory=dict,
        description="Days of rows kept per dataset, applied by compaction; 0 or absent keeps "
        "them forever, except orderbook_levels: 30 unless set.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_lake_url(value)

    def append_options(self) -> dict:
        """Keyword arguments of `vectorflow.lake.store.append`."""
        return {
            "merge_rows": self.merge_rows,
            "merge_files": self.merge_files,
            "grace_seconds": self.delete_grace_seconds,
        }

    def retention_ms(self, dataset: str) -> int | None:
        """How long rows of `dataset` are kept, in ms; None keeps them forever."""
        days = {**DEFAULT_RETENTION_DAYS, **self.retention_days}.get(dataset)
        return None if not days else int(days * 86_400_000)
