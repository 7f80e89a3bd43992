"""Lake settings: retention per dataset, tail merging and the grace before old snapshots go.

In the settings file:

    [lake]
    url = ""                       # "" = <data dir>/lake; a folder; or s3://bucket/prefix
    merge_files = 8                # this many small files in a period are merged into one
    merge_rows = 50000             # ...where "small" is fewer rows than this
    delete_grace_seconds = 0       # superseded snapshots stay this long (at least 2 s)
    [lake.retention_days]          # compaction deletes older rows; absent = kept forever
    orderbook_levels = 30
    candles = 0                    # 0 also means forever
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Order book levels grow by about 288,000 rows per symbol and market a day at 100 levels a
#: minute: kept 30 days unless configured; everything else is kept forever.
DEFAULT_RETENTION_DAYS: dict[str, float] = {"orderbook_levels": 30.0}


class LakeSettings(BaseModel):
    """The `[lake]` section of the settings file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str = Field(  # VECTORFLOW_LAKE_URL overrides it (vectorflow.lake.storage.open_storage)
        default="",
        description='Where the lake is: "" for <data dir>/lake, a folder, or '
        "s3://bucket/prefix. Environment: VECTORFLOW_LAKE_URL.",
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
    retention_days: dict[str, float] = Field(
        default_factory=dict,
        description="Days of rows kept per dataset, applied by compaction; 0 or absent keeps "
        "them forever, except orderbook_levels: 30 unless set.",
    )

    @field_validator("retention_days")
    @classmethod
    def _known(cls, value: dict[str, float]) -> dict[str, float]:
        from vectorflow.lake.schema import DATASETS

        for name, days in value.items():
            if name not in DATASETS:
                raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
            if days < 0:
                raise ValueError(f"retention of {name} must be >= 0 days (0 keeps forever)")
        return value

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
