"""All configuration in one place, read from `SIJILL_*` environment variables or `.env`."""

from functools import lru_cache

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
    page_size_max: int = Field(500, ge=1)
    host: str = "127.0.0.1"
    port: int = 8000


@lru_cache
def get_settings() -> Settings:
    return Settings()
