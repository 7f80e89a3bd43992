"""Fixtures of the lake tests: moto's S3 server on 127.0.0.1 for the whole session."""

from __future__ import annotations

import pytest

from vectorflow.sim.s3 import LocalS3


@pytest.fixture(scope="session")
def local_s3():
    """An S3 endpoint (moto) on a free loopback port."""
    with LocalS3() as s3:
        yield s3
