"""Where a stream's chunks live: a local folder or object storage (``s3://bucket/prefix``).

litdata writes and reads the chunks; this module joins the paths, checks that an S3 endpoint
answers before anything waits on it (one line, exit 2, within seconds), and reads and writes
the few small files kept beside the chunks (``stream.json``, ``data_manifest.csv``,
``splits.csv``). S3 options are litdata's ``storage_options`` (boto3's client arguments:
``endpoint_url`` for an S3-compatible server, ``region_name``...); credentials come from the
usual AWS variables or files.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError

CONNECT_SECONDS = 3  # an endpoint that does not answer in this long is reported, not waited on
# source_options keys that go to litdata's StreamingDataset, not to the S3 client
DATASET_KEYS = ("cache_dir", "max_cache_size")


def split_options(options: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``data.source_options`` as (S3 storage options, StreamingDataset arguments)."""
    options = dict(options or {})
    dataset = {k: options.pop(k) for k in DATASET_KEYS if k in options}
    return options, dataset


def allow_plain_http(storage: dict[str, Any]) -> None:
    """litdata moves chunks through obstore, which refuses ``http://`` endpoints unless told
    (a MinIO or moto server on a private network); litdata 0.2.76 has no option for it."""
    if str(storage.get("endpoint_url", "")).startswith("http://"):
        from litdata.streaming import downloader

        downloader._OBSTORE_CLIENT_OPTIONS["allow_http"] = "true"


class Store:
    """A stream's place: ``join(name)`` is where litdata reads or writes a part."""

    def __init__(self, url: str, storage: dict[str, Any] | None = None) -> None:
        self.url = url.rstrip("/")
        self.storage = dict(storage or {})
        self.remote = self.url.startswith("s3://")
        if "://" in self.url and not self.remote:
            raise UserError(f"'{url}' is neither a local folder nor s3://bucket/prefix")
        if self.remote:
            allow_plain_http(self.storage)

    def join(self, name: str) -> str:
        return f"{self.url}/{name}" if self.remote else str(Path(self.url) / name)

    @property
    def bucket_key(self) -> tuple[str, str]:
        bucket, _, key = self.url[len("s3://") :].partition("/")
        return bucket, key

    def where(self) -> str:
        endpoint = self.storage.get("endpoint_url")
        return f"{self.url} (endpoint {endpoint})" if endpoint else self.url

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(
            connect_timeout=CONNECT_SECONDS,
            read_timeout=30,
            retries={"max_attempts": 1, "mode": "standard"},
        )
        return boto3.client("s3", config=config, **self.storage)

    def check(self) -> None:
        """Stop with one line when the endpoint, the credentials or the bucket are missing."""
        if not self.remote:
            return
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        bucket, _ = self.bucket_key
        try:
            self.client().head_bucket(Bucket=bucket)
        except NoCredentialsError as exc:
            raise UserError(
                f"no S3 credentials for {self.where()}; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or an AWS profile)"
            ) from exc
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            what = "does not exist" if code in ("404", "NoSuchBucket") else f"refused: {code}"
            raise UserError(f"S3 bucket '{bucket}' at {self.where()} {what}") from exc
        except (BotoCoreError, ValueError) as exc:
            raise UserError(
                f"S3 endpoint of {self.where()} cannot be reached ({type(exc).__name__}); "
                "check endpoint_url in data.source_options or --storage_options"
            ) from exc

    def exists(self, name: str) -> bool:
        if not self.remote:
            return Path(self.join(name)).exists()
        bucket, key = self.bucket_key
        found = self.client().list_objects_v2(Bucket=bucket, Prefix=f"{key}/{name}", MaxKeys=1)
        return found.get("KeyCount", 0) > 0

    def write_text(self, name: str, text: str) -> None:
        self.write_bytes(name, text.encode())

    def write_bytes(self, name: str, data: bytes) -> None:
        if not self.remote:
            Path(self.url).mkdir(parents=True, exist_ok=True)
            Path(self.join(name)).write_bytes(data)
            return
        bucket, key = self.bucket_key
        self.client().put_object(Bucket=bucket, Key=f"{key}/{name}", Body=data)

    def read_text(self, name: str) -> str:
        return self.read_bytes(name).decode()

    def read_csv(self, name: str) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(self.read_text(name))))

    def read_bytes(self, name: str) -> bytes:
        """A small file beside the chunks; a missing one names the folder and what writes it."""
        missing = UserError(
            f"'{self.join(name)}' does not exist; write the stream first with "
            f"`mlcycle optimize --config CONFIG --out {self.url}`"
        )
        if not self.remote:
            path = Path(self.join(name))
            if not path.is_file():
                raise missing
            return path.read_bytes()
        from botocore.exceptions import ClientError

        bucket, key = self.bucket_key
        try:
            body = self.client().get_object(Bucket=bucket, Key=f"{key}/{name}")["Body"]
        except ClientError as exc:
            raise missing from exc
        return body.read()


def chunk_args(store: Store, options: dict[str, Any], split: str, **kwargs: Any) -> dict[str, Any]:
    """litdata's StreamingDataset arguments for the chunks of ``split`` in ``store``."""
    where = {"input_dir": store.join(split), "storage_options": store.storage or None}
    return {**where, **options, **kwargs}


class StreamSource:
    """What every data module that reads a stream shares (images, tables): its place, litdata's
    options and ``stream.json``. A mixin: first base, before the data module it streams."""

    store: Store
    stream_options: dict[str, Any]

    def _open_stream(self, place: str | None, source_options: Any, key: str) -> None:
        """``key`` is the data key that names the stream (``root``, ``path``)."""
        if not place:
            raise UserError(
                f"data.{key} is not set; pass the stream's folder or s3://bucket/prefix"
            )
        storage, self.stream_options = split_options(source_options)
        self.store = Store(place, storage)
        self._record: dict[str, Any] | None = None

    def _check_record(self, record: dict[str, Any]) -> None:
        """Stop on a stream this data module cannot read (a subclass says; any by default)."""

    @property
    def record(self) -> dict[str, Any]:
        """The stream's ``stream.json``."""
        if self._record is None:
            self.store.check()
            record = json.loads(self.store.read_text("stream.json"))
            self._check_record(record)
            self._record = record
        return self._record

    def chunks(self, split: str, **kwargs: Any) -> dict[str, Any]:
        """litdata's StreamingDataset arguments for a split's chunks (``kwargs`` added)."""
        return chunk_args(self.store, self.stream_options, split, **kwargs)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "stream": self.store.url}  # type: ignore[misc]
