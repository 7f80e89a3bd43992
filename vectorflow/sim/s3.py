"""A local S3 endpoint for the object-store lake: moto's server on 127.0.0.1 (tests, benchmarks).

    with LocalS3() as s3:
        env = s3.lake_env("bucket-name")   # AWS_* variables and VECTORFLOW_LAKE_URL
        ...

moto (`pip install 'moto[server]'`, in the test extras) speaks the S3 REST protocol over a
real socket, so the lake is reached exactly as on AWS: pyarrow's S3 client, signed requests,
multipart uploads, server-side copies.
"""

from __future__ import annotations

import logging


class LocalS3:
    """moto's S3 server on a free loopback port."""

    def __init__(self) -> None:
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as exc:  # pragma: no cover - moto is in the test extras
            raise RuntimeError("a local S3 endpoint needs moto[server] (test extras)") from exc
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.url = ""

    def __enter__(self) -> LocalS3:
        werkzeug = logging.getLogger("werkzeug")
        if not werkzeug.handlers:  # no one collects them: no line per request on stderr
            werkzeug.setLevel(logging.WARNING)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self

    def __exit__(self, *exc) -> None:
        self._server.stop()

    @property
    def aws_env(self) -> dict[str, str]:
        """The standard AWS variables that point a client at this endpoint."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "vectorflow-test",
            "AWS_SECRET_ACCESS_KEY": "vectorflow-test-secret",
            "AWS_REGION": "us-east-1",
        }

    def create_bucket(self, name: str) -> None:
        import pyarrow.fs as pafs

        fs = pafs.S3FileSystem(
            access_key=self.aws_env["AWS_ACCESS_KEY_ID"],
            secret_key=self.aws_env["AWS_SECRET_ACCESS_KEY"],
            endpoint_override=self.url.removeprefix("http://"),
            scheme="http",
            region="us-east-1",
            allow_bucket_creation=True,
        )
        fs.create_dir(name)

    def lake_env(self, bucket: str, prefix: str = "lake") -> dict[str, str]:
        """A new bucket, and the environment that puts the lake in it."""
        self.create_bucket(bucket)
        return {**self.aws_env, "VECTORFLOW_LAKE_URL": f"s3://{bucket}/{prefix}"}

