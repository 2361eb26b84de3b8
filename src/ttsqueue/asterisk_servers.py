"""Several Asterisk servers (`ASTERISK_SERVERS`, SPEC §11): each one's AMI login, channel,
limits and the numbers it serves. Pure: every value is checked here as hostile input, because
the host, user, secret and channel all end up on an AMI wire or in a dial string.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

# The name of the one server the single-server variables describe (no ASTERISK_SERVERS).
DEFAULT_SERVER = "default"
MAX_SERVERS = 32

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?")
# AMI user names as manager.conf sections: no separators of its own syntax or of AMI's.
_AMI_USER = re.compile(r"[A-Za-z0-9_.@+-]{1,64}")
_PREFIX = re.compile(r"\+?[0-9]{1,15}")
PLACEHOLDERS = ("{number}", "{e164}", "{e164_digits}")
# What Asterisk would read as a separator in a dial string, or AMI as the end of a header.
_CHANNEL_FORBIDDEN = frozenset("\r\n\x00&,|;")
_SECRET_FORBIDDEN = frozenset("\r\n\x00")


def check_channel_template(value: str) -> str:
    """ASTERISK_CHANNEL's rules: a placeholder for the number, no line breaks."""
    if not any(p in value for p in PLACEHOLDERS):
        raise ValueError("must contain {number}, {e164} or {e164_digits}")
    if any(ch in value for ch in "\r\n"):
        raise ValueError("must not contain line breaks")
    return value


def check_host(value: str) -> str:
    """A host name or an IP address (IPv6 with or without brackets), nothing else."""
    bare = value.removeprefix("[").removesuffix("]")
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    if not _HOSTNAME.fullmatch(value):
        raise ValueError("must be a host name or an IP address")
    return value


class AsteriskServer(BaseModel):
    """One Asterisk server of ASTERISK_SERVERS."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    ami_host: str
    ami_port: int = Field(default=5038, ge=1, le=65535)
    ami_user: str
    ami_secret: SecretStr = SecretStr("")
    channel: str = "PJSIP/{number}@trunk"
    max_concurrent_calls: int = Field(default=10, ge=1, le=100_000)
    calls_per_second: float = Field(default=5.0, gt=0, le=10_000)
    # E.164 prefixes (`+57`, `+1`) of the numbers this server calls; empty: every number.
    prefixes: Annotated[tuple[str, ...], Field(max_length=200)] = ()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError(
                "must be 1-32 letters, digits, '_' or '-', not starting with '_' or '-'"
            )
        return value

    @field_validator("ami_host")
    @classmethod
    def _host(cls, value: str) -> str:
        return check_host(value)

    @field_validator("ami_user")
    @classmethod
    def _user(cls, value: str) -> str:
        if not _AMI_USER.fullmatch(value):
            raise ValueError("must be 1-64 letters, digits or . _ @ + -")
        return value

    @field_validator("ami_secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if len(raw) > 256 or any(ch in _SECRET_FORBIDDEN for ch in raw):
            raise ValueError("must be at most 256 characters, without line breaks or NUL")
        return value

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        check_channel_template(value)
        if any(ch in _CHANNEL_FORBIDDEN or ord(ch) < 0x20 for ch in value):
            raise ValueError("must not contain control characters, '&', ',', '|' or ';'")
        return value

    @field_validator("prefixes", mode="before")
    @classmethod
    def _prefixes(cls, value: object) -> object:
        if isinstance(value, str):
            raise ValueError('must be a list of E.164 prefixes such as ["+57"]')
        if not isinstance(value, list | tuple):
            return value
        found: list[str] = []
        for item in value:
            if not isinstance(item, str) or not _PREFIX.fullmatch(item):
                raise ValueError(f"{item!r} is not an E.164 prefix such as '+57'")
            prefix = "+" + item.removeprefix("+")
            if prefix not in found:
                found.append(prefix)
        return tuple(found)

    def serves(self, e164: str) -> bool:
        """Whether this server calls `e164` (an extension only reaches servers without
        prefixes)."""
        return not self.prefixes or any(e164.startswith(p) for p in self.prefixes)

    def shown(self) -> dict[str, object]:
        """What the configuration views show: everything but the secret."""
        body = self.model_dump(mode="json")
        body["ami_secret"] = "********" if self.ami_secret.get_secret_value() else ""
        return body


def check_servers(servers: list[AsteriskServer]) -> list[AsteriskServer]:
    """The list as a whole: at most MAX_SERVERS, names unique."""
    if len(servers) > MAX_SERVERS:
        raise ValueError(f"at most {MAX_SERVERS} servers")
    seen: set[str] = set()
    for server in servers:
        if server.name.lower() in seen:
            raise ValueError(f"server name {server.name!r} appears twice")
        seen.add(server.name.lower())
    return servers


def serving(servers: list[AsteriskServer], e164: str) -> list[AsteriskServer]:
    """The servers whose prefixes match `e164`, in configured order."""
    return [server for server in servers if server.serves(e164)]


def no_server_message(e164: str) -> str:
    """Why a number is refused when no server's prefixes match it."""
    return (
        f"{e164}: no Asterisk server of ASTERISK_SERVERS calls this number "
        "(its prefixes do not match)"
    )
