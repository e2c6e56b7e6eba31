"""The `sijill` command: each stage contributes its commands; this file only assembles them."""

import os
import sys

# Polars' allocator (jemalloc) hands freed pages back to the kernel within milliseconds by
# default; a bulk command allocates batches of the same size over and over, and page faults
# on the returned pages cost about a tenth of an import's time. Keep them for 30 s instead.
# Read when Polars is first imported, so set before any command imports it; an operator's own
# setting wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:30000,muzzy_decay_ms:30000")

import typer  # noqa: E402

from sijill.core.errors import SijillError  # noqa: E402
from sijill.security.cli_common import Output, OutputOption, emit_one, fail  # noqa: E402

app = typer.Typer(
    name="sijill",
    help="Sijill: the social registry and the delivery chain behind it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _register_commands() -> None:
    from sijill.analytics.cli import register as register_export
    from sijill.demo import demo
    from sijill.linkage.cli import register as register_linkage
    from sijill.payments.cli import register as register_payments
    from sijill.programs.cli import register as register_programs
    from sijill.programs.cli_entitlements import register as register_entitlements
    from sijill.registry.cli import register as register_registry
    from sijill.registry.merges.cli import register as register_merges
    from sijill.registry.reviews.cli import register as register_review_flags
    from sijill.security.audit.cli import register as register_audit
    from sijill.security.keys.cli import register as register_keys
    from sijill.security.users.cli import register as register_users
    from sijill.synth.cli import synth
    from sijill.targeting.cli import register as register_targeting

    app.command("synth")(synth)
    register_registry(app)
    register_review_flags(app)
    register_merges(app)
    register_linkage(app)
    register_targeting(app)
    register_programs(app)
    register_entitlements(app)
    register_payments(app)
    app.command("demo")(demo)
    register_users(app)
    register_export(app)
    register_audit(app)
    register_keys(app)
    app.command("serve")(serve_command)


def serve_command(
    workers: int = typer.Option(1, min=1, help="uvicorn worker processes (one per core)"),
    access_log: bool = typer.Option(False, help="log each request (no query strings)"),
    output: OutputOption = Output.table,
) -> None:
    """Serve the REST API (OpenAPI at /openapi.json, docs at /docs).

    --output applies to the line said before serving (its address); the server's log follows.

    Example: SIJILL_PORT=8080 sijill serve --workers 2
    """
    from sijill.api import serve
    from sijill.core.db import upgrade
    from sijill.core.settings import get_settings
    from sijill.security.keys.keyring import Keyring
    from sijill.security.keys.usage import check_keyring

    settings = get_settings()
    upgrade(settings.database_url)
    # Another keyring than the registry's would start and answer 500 to every read.
    check_keyring(settings.database_url, Keyring.load(settings.key_file))
    url = f"http://{settings.host}:{settings.port}/"
    emit_one({"url": url, "docs": f"{url}docs"}, output, message=f"API on {url} (docs at /docs)")
    serve(settings, workers=workers, access_log=access_log)


def main() -> None:
    _register_commands()
    try:
        app()
    except SijillError as error:
        # A user's mistake gets one clear line and a non-zero exit, never a traceback.
        sys.exit(fail(error.detail).exit_code)
