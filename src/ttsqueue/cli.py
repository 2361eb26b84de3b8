"""`ttsqueue`: run one process in the foreground, supervise them all, or talk to the API."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from ttsqueue.addresses import api_base_url, api_key, env_value
from ttsqueue.config import Settings, load_settings
from ttsqueue.domain import JobStatus, MachineDetection, Priority
from ttsqueue.errors import ConfigError, TopologyMismatchError
from ttsqueue.ops import calls, campaigns, dnc, housekeeping, operate, render
from ttsqueue.ops.client import ApiClient
from ttsqueue.ops.config_view import masked_config, service_endpoints
from ttsqueue.ops.layout import Layout
from ttsqueue.ops.supervisor import Supervisor, dashboard_available

app = typer.Typer(help="tts-queue: spoken messages delivered by phone.", no_args_is_help=True)

DEFAULT_WORKERS = 3
ApiUrl = Annotated[
    str | None,
    typer.Option("--api-url", help="API base URL (default: TTSQ_API_URL or API_HOST/PORT)"),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the raw JSON answer.")]
StopTimeout = Annotated[
    float, typer.Option("--timeout", help="Seconds to wait for a graceful exit before SIGKILL.")
]


# soft_wrap: long lines (log tails, URLs, errors) stay whole instead of being cut at 80 columns.
def _out() -> Console:
    return Console(soft_wrap=True)


def _err() -> Console:
    return Console(stderr=True, soft_wrap=True)


def _fail(message: str, code: int = 2) -> NoReturn:
    _err().print(f"[red]{escape(message)}[/]")
    raise typer.Exit(code)


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        _fail(str(exc))


def _running_settings() -> Settings:
    """The settings the local processes run with (recorded at `start`) when there is such a
    record, else the caller's: `status` and `test` reach the API with the port and key it was
    started with, even from a shell that does not have them."""
    recorded = _supervisor().recorded()
    if recorded is None:
        return _settings()
    try:
        return load_settings(_env_file=None, **recorded)
    except ConfigError as exc:
        _fail(str(exc))


def _supervisor() -> Supervisor:
    return Supervisor(Layout.discover())


def _client(settings: Settings, api_url: str | None) -> ApiClient:
    override = api_url or env_value("TTSQ_API_URL", Path.cwd())
    return ApiClient(api_base_url(settings, override), key=api_key(settings))


def _run_process(run: Callable[[Settings], None], settings: Settings) -> None:
    try:
        run(settings)
    except TopologyMismatchError as exc:
        _fail(str(exc))


# Foreground processes (what the supervisor starts); imported lazily to keep the CLI light. -
@app.command()
def api() -> None:
    """Run the HTTP API in the foreground (uvicorn on API_HOST:API_PORT)."""
    settings = _settings()
    from ttsqueue.api.app import run

    _run_process(run, settings)


@app.command()
def worker() -> None:
    """Run one worker in the foreground until SIGTERM."""
    settings = _settings()
    from ttsqueue.worker.main import run

    _run_process(run, settings)


@app.command()
def dashboard() -> None:
    """Run the dashboard in the foreground."""
    if not dashboard_available():
        _fail("the dashboard is not available in this version yet", 1)
    settings = _settings()
    # Not part of this version's code yet: resolved at run time.
    _run_process(importlib.import_module("ttsqueue.dashboard.app").run, settings)


# Supervision ---------------------------------------------------------------------------------
@app.command()
def start(
    workers: Annotated[
        int | None, typer.Option("--workers", "-w", min=0, help="Default: WORKERS or 3.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for /health.")] = 30.0,
) -> None:
    """Start api, dashboard and workers in the background (idempotent); print the URLs."""
    settings = _settings()
    supervisor = _supervisor()
    if workers is None:
        workers = _configured_workers(supervisor)
    raise typer.Exit(operate.start(_out(), supervisor, settings, workers, timeout))


def _configured_workers(supervisor: Supervisor) -> int:
    raw = env_value("WORKERS", supervisor.layout.root) or str(DEFAULT_WORKERS)
    if not raw.isdigit():
        _fail(f"WORKERS must be a whole number, got {raw!r}")
    return int(raw)


@app.command()
def restart(
    workers: Annotated[
        int | None,
        typer.Option("--workers", "-w", min=0, help="Default: as many as are running now."),
    ] = None,
    timeout: StopTimeout = 30.0,
) -> None:
    """Stop everything, then start again with the current environment and .env (the way to
    change the configuration the processes were started with)."""
    settings = _settings()
    supervisor = _supervisor()
    if workers is None:
        workers = len(supervisor.live_workers()) or _configured_workers(supervisor)
    raise typer.Exit(operate.restart(_out(), supervisor, settings, workers, timeout))


@app.command()
def stop(timeout: StopTimeout = 30.0) -> None:
    """Stop every process gracefully (SIGTERM, then SIGKILL after the timeout)."""
    raise typer.Exit(operate.stop(_out(), _supervisor(), timeout))


@app.command()
def scale(
    count: Annotated[int, typer.Argument(min=0, help="Number of workers to keep running.")],
    timeout: StopTimeout = 30.0,
) -> None:
    """Bring the number of running workers to COUNT (new ones get the configuration recorded
    at start)."""
    raise typer.Exit(operate.scale(_out(), _supervisor(), count, timeout))


@app.command()
def status(
    job_id: Annotated[str | None, typer.Argument(help="Show one job instead.")] = None,
    as_json: AsJson = False,
    api_url: ApiUrl = None,
) -> None:
    """Processes, health, queues and workers (exit 0 all healthy, 1 not); or one job's status
    with JOB_ID (exit 0 found, 2 unknown job, 3 API unreachable)."""
    settings = _running_settings()
    with _client(settings, api_url) as client:
        if job_id is not None:
            action = partial(calls.job_status, _out(), client, job_id, as_json)
            raise typer.Exit(calls.guarded(_err(), action))
        raise typer.Exit(operate.status(_out(), _supervisor(), client, as_json))


@app.command()
def logs(
    which: Annotated[str | None, typer.Argument(help="api, dashboard or worker")] = None,
    lines: Annotated[int, typer.Option("--lines", "-n", min=0)] = 50,
    follow: Annotated[bool, typer.Option("--follow/--no-follow")] = True,
) -> None:
    """Follow the log files (all, or one group)."""
    if which not in (None, *housekeeping.LOG_GROUPS):
        _fail(f"unknown log group {which!r}: use api, dashboard or worker")
    raise typer.Exit(housekeeping.logs(_out(), Layout.discover(), which, lines, follow))


@app.command()
def clean(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    queues: Annotated[
        bool, typer.Option("--queues", help="Delete the queues instead of purging them.")
    ] = False,
) -> None:
    """Stop everything; purge the queues and the Redis keys; remove audio and logs."""
    settings = _settings()
    what = "DELETE the queues" if queues else "purge the queues"
    if not yes:
        typer.confirm(
            f"Stop all processes, {what}, delete Redis keys under {settings.REDIS_PREFIX!r}, "
            "generated audio and logs?",
            abort=True,
        )
    raise typer.Exit(housekeeping.clean(_out(), _supervisor(), settings, queues))


# Client commands -----------------------------------------------------------------------------
@app.command()
def call(
    text: str,
    number: str,
    priority: Annotated[Priority, typer.Option()] = Priority.NORMAL,
    language: Annotated[str | None, typer.Option(help="Default: DEFAULT_LANGUAGE.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the job to its end.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to follow with --wait.")] = 120.0,
    max_retries: Annotated[
        int | None, typer.Option(help="Retries after busy / no answer (default: server's).")
    ] = None,
    confirm: Annotated[
        str | None,
        typer.Option(help="Ask the callee to press one of these keys to confirm (e.g. 1)."),
    ] = None,
    machine_detection: Annotated[
        MachineDetection, typer.Option(help="Answering machines: off, hangup, message, retry.")
    ] = MachineDetection.OFF,
    retry_unconfirmed: Annotated[
        bool, typer.Option(help="Retry an unconfirmed call like a no-answer.")
    ] = False,
    as_json: AsJson = False,
    api_url: ApiUrl = None,
) -> None:
    """Submit a call. Exit 0 ok/completed, 1 failed or canceled, 2 refused, 3 unreachable."""
    extra: dict[str, object] = {}
    if confirm is not None:
        extra["confirm"] = {"digits": confirm}
    if machine_detection is not MachineDetection.OFF:
        extra["machine_detection"] = machine_detection.value
    if retry_unconfirmed:
        extra["retry_unconfirmed"] = True
    with _client(_settings(), api_url) as client:
        action = partial(
            calls.place_call,
            _out(),
            client,
            text=text,
            number=number,
            priority=priority.value,
            language=language,
            wait=wait,
            as_json=as_json,
            timeout=timeout,
            max_retries=max_retries,
            extra=extra,
        )
        raise typer.Exit(calls.guarded(_err(), action))


@app.command("test")
def smoke_test(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the outcome.")] = 120.0,
    api_url: ApiUrl = None,
) -> None:
    """Submit a Spanish test call to 3005050149 and follow it to its outcome."""
    with _client(_running_settings(), api_url) as client:
        raise typer.Exit(
            calls.guarded(_err(), lambda: calls.run_test_call(_out(), client, timeout))
        )


@app.command()
def stats(as_json: AsJson = False, api_url: ApiUrl = None) -> None:
    """Queue depths, workers and job counters from /queue/stats."""
    with _client(_settings(), api_url) as client:
        raise typer.Exit(calls.guarded(_err(), lambda: calls.stats(_out(), client, as_json)))


@app.command()
def jobs(
    status: Annotated[JobStatus | None, typer.Option(help="Only jobs in this status.")] = None,
    priority: Annotated[Priority | None, typer.Option(help="Only jobs of this priority.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200, help="Jobs per page.")] = 20,
    cursor: Annotated[
        str | None, typer.Option(help="Continue after the page that gave this `next_cursor`.")
    ] = None,
    as_json: AsJson = False,
    api_url: ApiUrl = None,
) -> None:
    """Recent jobs, newest first, one page at a time (GET /tts/jobs).
    Exit 0 listed (even none), 2 refused, 3 API unreachable."""
    with _client(_settings(), api_url) as client:
        action = partial(
            calls.jobs,
            _out(),
            client,
            status=status.value if status else None,
            priority=priority.value if priority else None,
            limit=limit,
            cursor=cursor,
            as_json=as_json,
        )
        raise typer.Exit(calls.guarded(_err(), action))


# The do-not-call list (SPEC §13) -------------------------------------------------------------
dnc_app = typer.Typer(
    help="The do-not-call list: numbers never to be called (stored in E.164).",
    no_args_is_help=True,
)
app.add_typer(dnc_app, name="dnc")
Number = Annotated[str, typer.Argument(help="A phone number, e.g. 3005050149 or +57 300 505 0149.")]


@dnc_app.command("add")
def dnc_add(number: Number, as_json: AsJson = False, api_url: ApiUrl = None) -> None:
    """List a number (PUT /dnc/{phone}). Exit 0 listed, 2 refused, 3 API unreachable."""
    with _client(_settings(), api_url) as client:
        raise typer.Exit(calls.guarded(_err(), lambda: dnc.add(_out(), client, number, as_json)))


@dnc_app.command("remove")
def dnc_remove(number: Number, as_json: AsJson = False, api_url: ApiUrl = None) -> None:
    """Unlist a number (DELETE /dnc/{phone}). Exit 2 when it was not listed."""
    with _client(_settings(), api_url) as client:
        raise typer.Exit(calls.guarded(_err(), lambda: dnc.remove(_out(), client, number, as_json)))


@dnc_app.command("import")
def dnc_import(
    file: Annotated[
        str,
        typer.Argument(
            help="A CSV file (one number a line, or a phone_number column), a .json file "
            '({"numbers": [...]}), or - for standard input.'
        ),
    ],
    as_json: AsJson = False,
    api_url: ApiUrl = None,
) -> None:
    """List every number of a file (POST /dnc); invalid lines are reported, not fatal.
    Exit 0 imported, 2 refused (no valid number, unreadable file), 3 API unreachable."""
    with _client(_settings(), api_url) as client:
        action = partial(dnc.import_file, _out(), _err(), client, file, as_json)
        raise typer.Exit(calls.guarded(_err(), action))


@dnc_app.command("list")
def dnc_list(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Numbers per page.")] = 100,
    cursor: Annotated[
        str | None, typer.Option(help="Continue after the page that gave this `next_cursor`.")
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Every page, one after another.")] = False,
    as_json: AsJson = False,
    api_url: ApiUrl = None,
) -> None:
    """Listed numbers in number order, with when and by whom each was added (GET /dnc)."""
    with _client(_settings(), api_url) as client:
        action = partial(
            dnc.listing, _out(), client, limit=limit, cursor=cursor, every=every, as_json=as_json
        )
        raise typer.Exit(calls.guarded(_err(), action))


# Campaigns (SPEC §13) ------------------------------------------------------------------------
campaign_app = typer.Typer(
    help="Campaigns: one call per row of a CSV file, paced, with live progress.",
    no_args_is_help=True,
)
app.add_typer(campaign_app, name="campaign")
CampaignId = Annotated[str, typer.Argument(help="The campaign id (from create or status).")]


@campaign_app.command("create")
def campaign_create(
    file: Annotated[
        str,
        typer.Argument(
            help="A CSV file (UTF-8, `,` or `;`) with a phone_number column and every column "
            "the template names, or - for standard input."
        ),
    ],
    template: Annotated[
        str, typer.Option("--template", "-t", help="The message, e.g. 'Hola {nombre}'.")
    ],
    name: Annotated[str | None, typer.Option(help="Default: the file name.")] = None,
    language: Annotated[str | None, typer.Option(help="Default: DEFAULT_LANGUAGE.")] = None,
    max_concurrent_calls: Annotated[int | None, typer.Option(min=1)] = None,
    calls_per_minute: Annotated[int | None, typer.Option(min=1)] = None,
    calling_windows: Annotated[
        str | None, typer.Option(help="e.g. co-ley-2300 or 'mon-fri 08:00-18:00'.")
    ] = None,
    max_retries: Annotated[int | None, typer.Option(min=0, max=5)] = None,
    confirm: Annotated[
        str | None,
        typer.Option(
            "--confirm-digits",
            "--confirm",
            help="Ask each callee to press one of these keys to confirm (e.g. 1).",
        ),
    ] = None,
    machine_detection: Annotated[
        MachineDetection, typer.Option(help="Answering machines: off, hangup, message, retry.")
    ] = MachineDetection.OFF,
    retry_unconfirmed: Annotated[
        bool, typer.Option(help="Retry an unconfirmed call like a no-answer.")
    ] = False,
    paused: Annotated[bool, typer.Option(help="Create it paused (resume starts it).")] = False,
    dry_run: Annotated[bool, typer.Option(help="Check the rows; create nothing.")] = False,
    wait: Annotated[bool, typer.Option(help="Follow it with a live progress bar.")] = False,
    as_json: AsJson = False,
    api_url: ApiUrl = None,
) -> None:
    """Create a campaign (POST /campaigns); refused rows are listed by line, not fatal.
    Exit 0 created, 2 refused (no valid row, bad field), 3 API unreachable."""
    wanted = {
        "name": name or Path(file).stem or "campaign",
        "template": template,
        "language": language,
        "max_concurrent_calls": max_concurrent_calls,
        "calls_per_minute": calls_per_minute,
        "calling_windows": calling_windows,
        "max_retries": max_retries,
        "confirm": json.dumps({"digits": confirm}) if confirm is not None else None,
        "machine_detection": machine_detection.value
        if machine_detection is not MachineDetection.OFF
        else None,
        "retry_unconfirmed": "true" if retry_unconfirmed else None,
        "paused": "true" if paused else None,
        "dry_run": "true" if dry_run else None,
    }
    fields = {k: str(v) for k, v in wanted.items() if v is not None}
    with _client(_settings(), api_url) as client:
        action = partial(
            campaigns.create, _out(), _err(), client, file, fields, wait=wait, as_json=as_json
        )
        raise typer.Exit(calls.guarded(_err(), action))


@campaign_app.command("status")
def campaign_status(
    campaign_id: Annotated[str | None, typer.Argument(help="Default: every campaign.")] = None,
    wait: Annotated[bool, typer.Option(help="Follow it with a live progress bar.")] = False,
    as_json: AsJson = False,
    api_url: ApiUrl = None,
) -> None:
    """Counts by status and outcome, progress and ETA (GET /campaigns[/{id}])."""
    with _client(_settings(), api_url) as client:
        if wait and campaign_id:
            cid = campaign_id

            def action() -> int:
                campaigns.follow(_out(), client, cid)
                return 0

            raise typer.Exit(calls.guarded(_err(), action))
        act = partial(campaigns.status, _out(), client, campaign_id, as_json)
        raise typer.Exit(calls.guarded(_err(), act))


def _campaign_verb(verb: str, campaign_id: str, as_json: bool, api_url: str | None) -> None:
    with _client(_settings(), api_url) as client:
        action = partial(campaigns.act, _out(), client, campaign_id, verb, as_json)
        raise typer.Exit(calls.guarded(_err(), action))


@campaign_app.command("pause")
def campaign_pause(
    campaign_id: CampaignId, as_json: AsJson = False, api_url: ApiUrl = None
) -> None:
    """Dial nothing new; calls in progress end normally. Exit 2 when not running."""
    _campaign_verb("pause", campaign_id, as_json, api_url)


@campaign_app.command("resume")
def campaign_resume(
    campaign_id: CampaignId, as_json: AsJson = False, api_url: ApiUrl = None
) -> None:
    """Start a paused campaign again."""
    _campaign_verb("resume", campaign_id, as_json, api_url)


@campaign_app.command("cancel")
def campaign_cancel(
    campaign_id: CampaignId, as_json: AsJson = False, api_url: ApiUrl = None
) -> None:
    """Never call the rows not released yet; cancel the calls still waiting."""
    _campaign_verb("cancel", campaign_id, as_json, api_url)


@campaign_app.command("results")
def campaign_results(
    campaign_id: CampaignId,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="A file (default: standard output).")
    ] = None,
    api_url: ApiUrl = None,
) -> None:
    """The results CSV: one line per row (status, outcome, attempts, confirmed, digits, times)."""
    with _client(_settings(), api_url) as client:
        action = partial(campaigns.results, _err(), client, campaign_id, output)
        raise typer.Exit(calls.guarded(_err(), action))


@app.command()
def config(as_json: AsJson = False) -> None:
    """The effective configuration, secrets masked."""
    rows = masked_config(_settings())
    if as_json:
        _out().out(json.dumps(dict(rows), indent=2), highlight=False)
    else:
        _out().print(render.config_table(rows))


@app.command("asterisk-setup")
def asterisk_setup(
    etc_dir: Annotated[
        Path, typer.Option("--etc-dir", help="Asterisk's configuration directory.")
    ] = Path("/etc/asterisk"),
    no_reload: Annotated[
        bool, typer.Option("--no-reload", help="Do not ask Asterisk to reload.")
    ] = False,
) -> None:
    """Install the dialplan and AMI snippets (deploy/asterisk) into Asterisk and reload it."""
    from ttsqueue.ops.asterisk_setup import install_snippets

    report = install_snippets(_settings(), etc_dir=etc_dir, reload=not no_reload)
    for line in report.done:
        _out().print(f"[green]ok[/] {escape(line)}")
    for line in report.warnings:
        _err().print(f"[yellow]!![/] {escape(line)}")
    raise typer.Exit(0 if report.ok else 1)


@app.command(hidden=True)
def endpoints() -> None:
    """`<service> <host> <port>` for RabbitMQ and Redis, one per line (read by manage.sh)."""
    for service, host, port in service_endpoints(_settings()):
        typer.echo(f"{service} {host} {port}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
