"""All configuration in one place, read from `SIJILL_*` environment variables or `.env`."""

import json
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIJILL_", env_file=".env", extra="ignore")

    database_url: str = Field(
        "sqlite:///sijill.db",
        description="SQLAlchemy URL; SQLite by default, postgresql+psycopg://... in production",
    )
    national_id_scheme: str = Field(
        "tr.tckimlik",
        description="How citizens' national ID numbers are validated: a python-stdnum module "
        "name, or 'digits:N' for a country whose scheme stdnum does not know",
    )
    import_batch_size: int = Field(20_000, ge=100, description="households per import batch")
    import_initial_load: bool = Field(
        True,
        description="load an empty PostgreSQL registry in one transaction, indexes built last",
    )
    import_pause_after_batch: int | None = Field(
        None,
        ge=1,
        description="for testing interruptions: after batch N is written (committed; in an "
        "initial load, sent), with another batch waiting, say `paused after batch N` on stderr "
        "and wait for Ctrl-C or a kill",
    )
    language: Literal["ar", "fr", "en"] = Field(
        "en",
        description="the language of answers when a request does not ask for one (its "
        "Accept-Language header); sijill.core.i18n.SUPPORTED",
    )
    arabic_digits: Literal["latn", "arab"] = Field(
        "latn",
        description="the digits of the Arabic web pages: latn (0-9, the Maghreb) or arab "
        "(Arabic-Indic, much of the Mashreq)",
    )
    page_size_max: int = Field(500, ge=1)
    host: str = "127.0.0.1"
    port: int = 8000

    # --- security ---
    key_file: Path = Field(
        Path("sijill-keys.json"),
        description="The keyring: identifier encryption keys, the blind-index key, the token "
        "signing key and the pseudonymisation key. Created (mode 0600) on first use if "
        "missing. Keep it outside the repository and back it up apart from the database: "
        "without it, encrypted identifiers cannot be read.",
    )
    access_token_minutes: int = Field(15, ge=1, description="lifetime of an access token")
    refresh_token_hours: int = Field(12, ge=1, description="lifetime of a refresh token")
    oidc_issuer: str | None = Field(
        None, description="accept access tokens from this OpenID Connect issuer (iss claim)"
    )
    oidc_audience: str | None = Field(None, description="the aud claim OIDC tokens must carry")
    oidc_jwks_url: str | None = Field(None, description="the issuer's JWKS (signing keys) URL")
    oidc_jwks_file: Path | None = Field(
        None, description="the issuer's JWKS as a local file, instead of oidc_jwks_url"
    )
    oidc_username_claim: str = Field(
        "preferred_username",
        description="the OIDC claim naming the Sijill user whose roles and areas apply",
    )
    login_attempts_per_minute: int = Field(
        10, ge=1, description="failed logins allowed per user name and per client address"
    )
    max_request_bytes: int = Field(
        1_000_000, ge=1024, description="larger request bodies are refused with 413"
    )
    max_upload_bytes: int = Field(
        200_000_000,
        ge=1024,
        description="the body limit of file uploads (POST /imports) instead of "
        "max_request_bytes; larger uploads are refused with 413",
    )
    request_body_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="longest wait for the next part of a request body; a client that sends "
        "less than it announced is answered 408 and the worker freed",
    )
    work_dir: Path = Field(
        Path("sijill-work"),
        description="where uploaded files wait for their job and jobs leave their results "
        "(rejects files); created private (mode 0700). Holds personal data: keep it on the "
        "server's own disk and out of backups that leave the site",
    )
    job_workers: int = Field(
        2, ge=1, description="jobs (imports, ...) run at the same time by each API process"
    )
    request_threads: int = Field(
        2,
        ge=1,
        le=64,
        description="threads of each API process that run requests' blocking work (database "
        "reads and writes of the pages and the API's endpoints) at the same time. That work is "
        "mostly Python, which runs one thread at a time: more threads than this only pass the "
        "interpreter lock around (measured on the household page at 16 connections, 2 "
        "workers: 40 threads 5.6 ms of server CPU per page, 2 threads 4.8 ms). Long work "
        "belongs in jobs; raise this if requests wait on slow outside calls",
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="origins allowed to call the API from a browser"
    )
    session_file: Path = Field(
        Path.home() / ".config" / "sijill" / "session.json",
        description="where `sijill login` keeps the CLI's tokens",
    )
    audit_reads_wait_for_flush: bool = Field(
        False,
        description="Make a read wait until its audit record is flushed to disk on PostgreSQL, "
        "not only committed. Off: a crash of the database server can lose the last fraction "
        "of a second of read records (never a write's, never the chain's consistency), and "
        "reads do not queue behind each other's fsync.",
    )
    min_cell_size: int = Field(
        10, ge=1, description="aggregates for analysts suppress cells of fewer households"
    )
    aggregates_max_age: int = Field(
        300,
        ge=0,
        description="seconds a server keeps the country's aggregates (by area, by program) "
        "before computing them again; each answer says when its figures were computed "
        "(0: computed for every request)",
    )
    linkage_review_threshold: float = Field(
        0.95,
        gt=0,
        lt=1,
        description="record linkage proposes a pair for review from this match probability "
        "(measured in BENCHMARKS.md, 'Record linkage')",
    )
    linkage_auto_merge: bool = Field(
        False,
        description="merge the pairs at or above linkage_accept_threshold without a reviewer "
        "(off for a new country until its model's figures are known)",
    )
    linkage_accept_threshold: float = Field(
        0.999, gt=0, lt=1, description="with linkage_auto_merge, merge from this probability"
    )
    linkage_u_pairs: int = Field(
        5_000_000,
        ge=10_000,
        description="random pairs of records a new linkage model learns how often unrelated "
        "persons agree from (Splink's u; about 6 s a million pairs on 2 cores, whatever the "
        "registry's size)",
    )
    targeting_partition_households: int = Field(
        2_000_000,
        ge=1_000,
        description="a feature snapshot reads and computes the registry this many households "
        "at a time, so its memory stays flat however large the registry (about 3.5 GB per "
        "million households; the members are read once, for all partitions)",
    )
    bulk_read_streams: int = Field(
        2,
        ge=1,
        le=32,
        description="a feature snapshot reads PostgreSQL on this many connections at once "
        "(its households, memberships and persons, the persons in as many parts), in one "
        "snapshot of the database: each keeps one of the database server's cores busy",
    )

    payments_dir: Path | None = Field(
        None,
        description="where payment files and providers' reports are kept (default: "
        "<work_dir>/payments); personal data (names, accounts): the server's own disk only",
    )
    payment_file_retention_days: int = Field(
        730,
        ge=1,
        description="days a released batch's files and an ingested report are kept before "
        "`sijill payments purge` deletes them; their hashes, the instructions and the ledger "
        "stay for good",
    )
    payment_providers: dict[str, str] = Field(
        {"bank": "iso20022", "wallet": "mobile_money", "cash": "cash_agent", "card": "card"},
        description="which provider pays each kind of instrument (bank, wallet, cash, card)",
    )
    payer_name: str = Field(
        "Ministry of Social Affairs", description="the paying agency, as banks see it"
    )
    payer_iban: str | None = Field(
        None, description="the account payments leave from (needed for bank batches)"
    )
    payer_bic: str | None = Field(None, description="the paying agency's bank (BIC)")
    payment_weekend: list[int] = Field(
        [5, 6],
        description="ISO weekday numbers on which no payment is value-dated (5, 6: Friday "
        "and Saturday; 6, 7 for Saturday and Sunday)",
    )
    payment_holidays: list[str] = Field(
        [], description="public holidays (ISO dates) on which no payment is value-dated"
    )
    instrument_change_review: Literal["before_payment", "always", "never"] = Field(
        "before_payment",
        description="when a changed payment instrument waits for a second officer: "
        "before_payment (the household has an approved payment not yet sent), always, never",
    )
    mobile_money_format: Literal["csv", "json"] = Field(
        "csv", description="the bulk file mobile-money operators receive"
    )

    @property
    def payments_path(self) -> Path:
        return self.payments_dir or self.work_dir / "payments"

    def as_environment(self) -> dict[str, str]:
        """These settings as the `SIJILL_*` variables that read back to them: how a process
        hands its settings to the workers it spawns. Lists and mappings are JSON, as the
        environment source parses them."""
        environment = {}
        for name, value in self.model_dump(mode="json").items():
            if value is not None:
                text = json.dumps(value) if isinstance(value, list | dict) else str(value)
                environment[f"SIJILL_{name.upper()}"] = text
        return environment


@lru_cache
def get_settings() -> Settings:
    return Settings()
