"""ASTERISK_SERVERS: parsed once, every value checked as hostile input, secrets never shown;
and the routing of a number to its candidate servers (prefixes, servers that are down)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis.asyncio as aioredis

from ttsqueue.api.errors import FieldError
from ttsqueue.api.schemas import CallRequestIn, validate_call_request
from ttsqueue.asterisk_servers import DEFAULT_SERVER
from ttsqueue.backends import resolve_dialer
from ttsqueue.config import DialerName, load_settings
from ttsqueue.errors import ConfigError, PermanentJobError
from ttsqueue.ops.config_view import masked_config
from ttsqueue.ops.render import jobs_line
from ttsqueue.store.keys import Keys
from ttsqueue.worker.trunk import LineServer, TrunkGuard, line_servers

SECRET = "s3cr3t-never-shown"


def server(name: str = "bogota", **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "ami_host": "10.0.0.5",
        "ami_port": 5038,
        "ami_user": "tts",
        "ami_secret": SECRET,
        "channel": "PJSIP/{number}@trunk",
        "max_concurrent_calls": 20,
        "calls_per_second": 4,
        "prefixes": [],
        **fields,
    }


def servers_env(*items: dict[str, Any]) -> str:
    return json.dumps(list(items))


def test_a_json_list_of_servers_is_parsed_with_prefixes_normalized() -> None:
    settings = load_settings(
        ASTERISK_SERVERS=servers_env(
            server("bogota", prefixes=["57", "+571"]),
            server("miami", ami_host="pbx-2.example.net", prefixes=["+1"], max_concurrent_calls=5),
        )
    )
    found = settings.asterisk_servers
    assert [s.name for s in found] == ["bogota", "miami"]
    assert found[0].prefixes == ("+57", "+571")
    assert (found[1].ami_host, found[1].max_concurrent_calls) == ("pbx-2.example.net", 5)
    assert found[0].ami_secret.get_secret_value() == SECRET
    assert resolve_dialer(settings) is DialerName.AMI  # DIALER=auto
    assert [s.name for s in line_servers(settings)] == ["bogota", "miami"]


def test_without_it_the_single_server_variables_make_one_server() -> None:
    settings = load_settings(
        ASTERISK_AMI_HOST="pbx",
        ASTERISK_AMI_USER="u",
        ASTERISK_AMI_SECRET="p",
        MAX_CONCURRENT_CALLS=7,
        CALLS_PER_SECOND=2.5,
        ASTERISK_CHANNEL="SIP/{e164}",
    )
    (only,) = settings.asterisk_servers
    assert (only.name, only.ami_host, only.ami_user, only.channel) == (
        DEFAULT_SERVER,
        "pbx",
        "u",
        "SIP/{e164}",
    )
    assert (only.max_concurrent_calls, only.calls_per_second, only.prefixes) == (7, 2.5, ())
    assert line_servers(settings) == [LineServer(DEFAULT_SERVER, 7, 2.5)]
    assert load_settings(ASTERISK_SERVERS="").ASTERISK_SERVERS == []


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"name": "a b"}, "name"),
        ({"name": "-x"}, "name"),
        ({"name": "a,b"}, "name"),
        ({"ami_host": "pbx\r\nAction: Originate"}, "ami_host"),
        ({"ami_host": "pbx;rm"}, "ami_host"),
        ({"ami_host": ""}, "ami_host"),
        ({"ami_port": 70000}, "ami_port"),
        ({"ami_user": "tts\r\nSecret: x"}, "ami_user"),
        ({"ami_secret": "pw\r\nAction: Logoff"}, "ami_secret"),
        ({"channel": "PJSIP/trunk"}, "channel"),
        ({"channel": "PJSIP/{number}@trunk&Local/1@x"}, "channel"),
        ({"channel": "PJSIP/{number}\n@trunk"}, "channel"),
        ({"max_concurrent_calls": 0}, "max_concurrent_calls"),
        ({"calls_per_second": 0}, "calls_per_second"),
        ({"prefixes": ["57a"]}, "prefixes"),
        ({"prefixes": "+57"}, "prefixes"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_hostile_values_are_refused_naming_the_field(fields: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError, match=f"ASTERISK_SERVERS.0.{words}") as caught:
        load_settings(ASTERISK_SERVERS=servers_env(server(**fields)))
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("not json", "JSON list"),
        ('{"name": "a"}', "JSON list"),
        (servers_env(server("a"), server("A")), "appears twice"),
        (servers_env(*[server(f"s{n}") for n in range(33)]), "at most 32"),
    ],
)
def test_a_bad_list_is_refused(value: str, words: str) -> None:
    with pytest.raises(ConfigError, match=f"ASTERISK_SERVERS: .*{words}"):
        load_settings(ASTERISK_SERVERS=value)


def test_call_files_are_one_server_only() -> None:
    with pytest.raises(ConfigError, match="DIALER=callfile"):
        load_settings(DIALER="callfile", ASTERISK_SERVERS=servers_env(server()))
    # The simulator counts each server's lines and places no call.
    assert load_settings(DIALER="simulator", ASTERISK_SERVERS=servers_env(server())).DIALER == (
        DialerName.SIMULATOR
    )


def test_secrets_are_never_shown() -> None:
    settings = load_settings(ASTERISK_SERVERS=servers_env(server("a"), server("b")))
    shown = dict(masked_config(settings))["ASTERISK_SERVERS"]
    assert SECRET not in shown
    assert [s["ami_secret"] for s in json.loads(shown)] == ["********", "********"]
    assert [s["ami_host"] for s in json.loads(shown)] == ["10.0.0.5", "10.0.0.5"]
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings.asterisk_servers)


def guard(is_up: dict[str, bool] | None = None) -> TrunkGuard:
    up = is_up or {}
    return TrunkGuard(
        aioredis.Redis(),  # never reached: routing is decided before Redis is asked
        Keys("unit:"),
        servers=[
            LineServer("co", 10, 5.0, ("+57",)),
            LineServer("us", 10, 5.0, ("+1",)),
            LineServer("any", 10, 5.0),
        ],
        is_up=lambda name: up.get(name, True),
    )


def test_a_number_goes_to_the_servers_whose_prefixes_match() -> None:
    routes = guard()
    assert routes.candidates("+573005550006") == ["co", "any"]
    assert routes.candidates("+12125550100") == ["us", "any"]
    assert routes.candidates("+34600000000") == ["any"]
    assert routes.candidates("1001") == ["any"]  # an extension: servers without prefixes
    assert routes.candidates(None) == ["co", "us", "any"]  # a placed call's line, anywhere
    assert routes.limit == 30


def test_a_server_that_is_down_is_no_candidate_unless_all_are() -> None:
    assert guard({"co": False}).candidates("+573005550006") == ["any"]
    assert guard({"co": False, "any": False}).candidates("+573005550006") == ["co", "any"]


def test_a_number_no_server_serves_fails_for_good() -> None:
    routes = TrunkGuard(
        aioredis.Redis(), Keys("unit:"), servers=[LineServer("co", 1, 1.0, ("+57",))]
    )
    with pytest.raises(PermanentJobError) as caught:
        routes.candidates("+12125550100")
    assert caught.value.reason == "no_asterisk_server"


def test_server_lists_the_guard_refuses() -> None:
    with pytest.raises(ValueError, match="unique"):
        TrunkGuard(aioredis.Redis(), Keys("u:"), servers=[LineServer("a", 1, 1.0)] * 2)
    with pytest.raises(ValueError, match="max_calls"):
        TrunkGuard(aioredis.Redis(), Keys("u:"), servers=[LineServer("a", 0, 1.0)])


def test_each_server_has_its_own_keys_and_the_single_one_keeps_the_old_ones() -> None:
    keys = Keys("p:")
    assert keys.server_lines(DEFAULT_SERVER) == keys.call_slots
    assert keys.server_rate(DEFAULT_SERVER) == keys.call_rate
    assert keys.server_lines("co") == "p:calls:active:co"
    assert keys.server_rate("co") == "p:calls:rate:co"


def test_the_api_refuses_a_number_no_server_calls_naming_the_field() -> None:
    settings = load_settings(
        ASTERISK_SERVERS=servers_env(server("co", prefixes=["+57"]), server("us", prefixes=["+1"]))
    )
    languages = {"gtts": {"es"}, "espeak": {"es"}}

    def validated(phone: str) -> str:
        body = CallRequestIn.model_validate({"text": "Hola", "phone_number": phone})
        return validate_call_request(body, settings, languages).phone.e164

    assert validated("3005050149") == "+573005050149"
    assert validated("+1 212 555 0100") == "+12125550100"
    with pytest.raises(FieldError) as caught:
        validated("+34 600 000 000")
    assert (caught.value.field, caught.value.code) == ("phone_number", "no_asterisk_server")


def test_the_cli_stats_line_lists_each_server_and_the_line_queue() -> None:
    stats = {
        "jobs": {"total": 4, "by_status": {"calling": 3, "processing": 1}},
        "calls": {
            "by_outcome": {},
            "servers": [
                {"name": "pbx-a", "state": "connected", "active": 2, "limit": 3},
                {"name": "pbx-b", "state": "disconnected", "active": 1, "limit": 2},
            ],
            "waiting": {"high": 1, "normal": 0},
        },
    }
    assert jobs_line(stats).splitlines()[1:] == [
        "asterisk servers (live/limit): pbx-a connected 2/3, pbx-b disconnected 1/2",
        "waiting for a line: high=1, normal=0",
    ]


def test_the_trunk_is_every_servers_lines_and_rate_together() -> None:
    single = load_settings(MAX_CONCURRENT_CALLS=7, CALLS_PER_SECOND=2.5)
    assert (single.call_limit, single.call_rate) == (7, 2.5)
    several = load_settings(
        MAX_CONCURRENT_CALLS=7,
        ASTERISK_SERVERS=servers_env(
            server("a", max_concurrent_calls=20, calls_per_second=4),
            server("b", max_concurrent_calls=5, calls_per_second=1.5),
        ),
    )
    # What a worker's prefetch, a campaign's pacing and the dashboard's limit are measured by.
    assert (several.call_limit, several.call_rate) == (25, 5.5)
