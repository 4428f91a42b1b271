"""Database URL from AWS Secrets Manager, for processes configured by secret name (Lambda).

``PIXDEX_DATABASE_SECRET_ARN`` names a secret holding either

* the URL itself (``postgresql://user:password@host:5432/db``), as the secret string or as
  ``{"url": "..."}``; or
* the JSON an RDS/Aurora managed secret holds: ``username``, ``password``, ``host``,
  ``port`` (default 5432), ``dbname`` (default ``postgres``); optional ``sslmode`` (with
  ``verify-ca`` / ``verify-full`` the certificate is checked against Amazon's root CAs
  unless ``sslrootcert`` names another bundle).
  With RDS Proxy, put the proxy endpoint in ``host`` (or use the ``url`` form).

The secret is read once per process (one Secrets Manager client, cached URL).
``PIXDEX_DATABASE_URL``, when set, wins and no secret is read. Error messages never contain
the secret's values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import SecretStr

from pixdex.config import Settings, get_settings
from pixdex.errors import DatabaseUnavailableError, InvalidInputError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

__all__ = ["lambda_settings", "resolve_database_settings", "url_from_secret"]

_REQUIRED = ("username", "password", "host")


@cache
def _client(region: str | None) -> SecretsManagerClient:
    import boto3  # deferred: only processes configured by secret need it

    return boto3.client("secretsmanager", region_name=region)


def url_from_secret(text: str, overrides: Mapping[str, object] | None = None) -> str:
    """The PostgreSQL URL a secret's string describes (see the module docstring).

    ``overrides`` (host, port, dbname, sslmode; None values ignored) replace the JSON
    form's fields: with RDS Proxy the functions connect to the proxy, not the secret's host.
    """
    stripped = text.strip()
    if stripped.startswith(("postgresql://", "postgres://")):
        return stripped
    try:
        fields = json.loads(stripped)
    except json.JSONDecodeError:
        fields = None
    if not isinstance(fields, dict):
        raise InvalidInputError(
            "database secret must be a postgresql:// URL or a JSON object with url, or with "
            "username, password and host",
            field="database_secret_arn",
        )
    if isinstance(fields.get("url"), str):
        return url_from_secret(fields["url"])
    fields = {**fields, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    missing = [name for name in _REQUIRED if not fields.get(name)]
    if missing:
        raise InvalidInputError(
            f"database secret lacks {', '.join(missing)} (and has no url)",
            field="database_secret_arn",
        )
    user = quote(str(fields["username"]), safe="")
    password = quote(str(fields["password"]), safe="")
    port = int(fields.get("port") or 5432)
    dbname = quote(str(fields.get("dbname") or "postgres"), safe="")
    url = f"postgresql://{user}:{password}@{fields['host']}:{port}/{dbname}"
    params = {"sslmode": fields.get("sslmode"), "sslrootcert": fields.get("sslrootcert")}
    if str(params["sslmode"]).startswith("verify-") and not params["sslrootcert"]:
        params["sslrootcert"] = amazon_roots()
    query = "&".join(f"{k}={quote(str(v), safe='/')}" for k, v in params.items() if v)
    return f"{url}?{query}" if query else url


def amazon_roots() -> str:
    """A CA bundle holding Amazon's root CAs, which RDS Proxy's certificates (issued by ACM)
    chain to: the one botocore ships, present wherever boto3 is. A direct connection to an
    Aurora instance needs the RDS CA bundle instead (``PIXDEX_DATABASE_SSLROOTCERT``)."""
    return str(resources.files("botocore") / "cacert.pem")


@cache
def _secret_url(
    arn: str, region: str | None, overrides: tuple[tuple[str, object], ...] = ()
) -> str:
    try:
        secret = _client(region).get_secret_value(SecretId=arn)
    except (ClientError, BotoCoreError) as exc:
        raise DatabaseUnavailableError(
            f"cannot read the database secret {arn}: {exc}", field="database_secret_arn"
        ) from exc
    text = secret.get("SecretString")
    if text is None:
        raise InvalidInputError(
            f"database secret {arn} has no SecretString (binary secrets are not supported)",
            field="database_secret_arn",
        )
    return url_from_secret(text, dict(overrides))


def resolve_database_settings(settings: Settings) -> Settings:
    """``settings`` with ``database_url`` (and, with a read endpoint, ``database_read_url``)
    filled from the secret when only the ARN is set."""
    if settings.database_url is not None or not settings.database_secret_arn:
        return settings
    overrides = (
        ("host", settings.database_host),
        ("port", settings.database_port),
        ("dbname", settings.database_name),
        ("sslmode", settings.database_sslmode),
        ("sslrootcert", settings.database_sslrootcert),
    )
    url = _secret_url(settings.database_secret_arn, settings.aws_region, overrides)
    update: dict[str, object] = {"database_url": SecretStr(url)}
    if settings.database_read_host and settings.database_read_url is None:
        reader = (("host", settings.database_read_host), *overrides[1:])
        read_url = _secret_url(settings.database_secret_arn, settings.aws_region, reader)
        update["database_read_url"] = SecretStr(read_url)
    return settings.model_copy(update=update)


@cache
def lambda_settings() -> Settings:
    """The process's settings with the database resolved: call it per invocation (cached)."""
    return resolve_database_settings(get_settings())
