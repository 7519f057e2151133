"""EIP-4361 (Sign-In with Ethereum) messages: a strict parser and the matching formatter.

Pure functions, no I/O: `parse_message` follows the ABNF of EIP-4361 line by line and refuses
anything else (extra lines, CR, a trailing newline, fields out of order, an address that is not
EIP-55 checksummed), raising `SiweSyntaxError` naming the offending field. `format_message` is
its inverse: `parse_message(format_message(m)) == m` for every valid message (a property test
checks it). Checking the message against our domain, URI, chains, clock and nonces is the
service's job (`backend.auth.siwe_verify`), not the parser's.

The ABNF (https://eips.ethereum.org/EIPS/eip-4361):

    [ scheme "://" ] domain " wants you to sign in with your Ethereum account:" LF
    address LF
    LF
    [ statement LF ]
    LF
    "URI: " URI LF
    "Version: " version LF
    "Chain ID: " chain-id LF
    "Nonce: " nonce LF
    "Issued At: " issued-at
    [ LF "Expiration Time: " expiration-time ]
    [ LF "Not Before: " not-before ]
    [ LF "Request ID: " request-id ]
    [ LF "Resources:" *( LF "- " URI ) ]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from eth_utils import to_checksum_address

HEADER_SUFFIX = " wants you to sign in with your Ethereum account:"

_SCHEME = r"[A-Za-z][A-Za-z0-9+.-]*"
_PCT = r"%[0-9A-Fa-f]{2}"
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
# RFC 3986 authority: [userinfo "@"] host [":" port]
_AUTHORITY = re.compile(
    rf"^(?:(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*@)?"
    rf"(?:\[[0-9A-Fa-f:.]+\]|(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT})+)"
    r"(?::[0-9]{0,5})?$"
)
_HEADER = re.compile(rf"^(?:(?P<scheme>{_SCHEME})://)?(?P<domain>.+){re.escape(HEADER_SUFFIX)}$")
_URI = re.compile(rf"^{_SCHEME}:(?:[{_UNRESERVED}{_SUB_DELIMS}:/?#\[\]@]|{_PCT})*$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_STATEMENT = re.compile(rf"^[{_UNRESERVED}{_SUB_DELIMS}:/?#\[\]@ ]*$")
_NONCE = re.compile(r"^[A-Za-z0-9]{8,}$")
_CHAIN_ID = re.compile(r"^[0-9]+$")
_REQUEST_ID = re.compile(rf"^(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT})*$")
_DATE_TIME = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


class SiweSyntaxError(ValueError):
    """The message does not follow EIP-4361; `field` names where it went wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class SiweMessage:
    """One EIP-4361 message. Times are kept as written (RFC 3339), so formatting round-trips."""

    domain: str
    address: str
    uri: str
    version: str
    chain_id: int
    nonce: str
    issued_at: str
    statement: str | None = None
    scheme: str | None = None
    expiration_time: str | None = None
    not_before: str | None = None
    request_id: str | None = None
    resources: tuple[str, ...] | None = None

    @property
    def issued_at_time(self) -> datetime:
        return parse_datetime("issued-at", self.issued_at)

    @property
    def expiration_time_value(self) -> datetime | None:
        if self.expiration_time is None:
            return None
        return parse_datetime("expiration-time", self.expiration_time)

    @property
    def not_before_time(self) -> datetime | None:
        if self.not_before is None:
            return None
        return parse_datetime("not-before", self.not_before)


def parse_datetime(field: str, text: str) -> datetime:
    """An RFC 3339 `date-time` (with its offset) as an aware datetime."""
    if not _DATE_TIME.match(text):
        raise SiweSyntaxError(
            field, f"{text!r} is not an RFC 3339 date-time such as 2026-01-02T03:04:05Z"
        )
    try:
        return datetime.fromisoformat(text.upper())
    except ValueError as exc:
        raise SiweSyntaxError(field, f"{text!r} is not a valid date-time: {exc}") from None


def _field(lines: list[str], index: int, label: str, field: str) -> str:
    if index >= len(lines):
        raise SiweSyntaxError(field, f"missing the line '{label}...'")
    line = lines[index]
    if not line.startswith(label):
        raise SiweSyntaxError(field, f"expected a line starting with '{label}', got {line!r}")
    return line[len(label) :]


def parse_message(text: str) -> SiweMessage:
    """Parse `text` strictly as an EIP-4361 message."""
    if "\r" in text:
        raise SiweSyntaxError("message", "contains a carriage return; lines end with LF only")
    lines = text.split("\n")

    header = _HEADER.match(lines[0])
    if header is None:
        raise SiweSyntaxError("domain", f"the first line must be '<domain>{HEADER_SUFFIX}'")
    scheme, domain = header["scheme"], header["domain"]
    if not _AUTHORITY.match(domain):
        raise SiweSyntaxError("domain", f"{domain!r} is not an RFC 3986 authority (host[:port])")

    if len(lines) < 2 or not _ADDRESS.match(lines[1]):
        got = lines[1] if len(lines) > 1 else "nothing"
        raise SiweSyntaxError("address", f"expected 0x and 40 hex digits, got {got!r}")
    address = lines[1]
    checksummed = to_checksum_address(address)
    if address != checksummed:
        raise SiweSyntaxError("address", f"{address} is not EIP-55 checksummed ({checksummed})")

    if len(lines) < 5 or lines[2] != "":
        raise SiweSyntaxError("message", "expected an empty line after the address")
    statement: str | None
    if lines[3] == "" and lines[4].startswith("URI: "):
        statement, index = None, 4
    else:
        statement = lines[3]
        if not _STATEMENT.match(statement):
            raise SiweSyntaxError(
                "statement", "may hold only RFC 3986 reserved/unreserved characters and spaces"
            )
        if len(lines) < 6 or lines[4] != "":
            raise SiweSyntaxError("statement", "must be one line followed by an empty line")
        index = 5

    uri = _field(lines, index, "URI: ", "uri")
    if not _URI.match(uri):
        raise SiweSyntaxError("uri", f"{uri!r} is not an RFC 3986 URI")
    version = _field(lines, index + 1, "Version: ", "version")
    if version != "1":
        raise SiweSyntaxError("version", f"must be 1, got {version!r}")
    chain_text = _field(lines, index + 2, "Chain ID: ", "chain-id")
    if not _CHAIN_ID.match(chain_text):
        raise SiweSyntaxError("chain-id", f"must be a decimal number, got {chain_text!r}")
    nonce = _field(lines, index + 3, "Nonce: ", "nonce")
    if not _NONCE.match(nonce):
        raise SiweSyntaxError("nonce", "must be at least 8 letters or digits")
    issued_at = _field(lines, index + 4, "Issued At: ", "issued-at")
    parse_datetime("issued-at", issued_at)
    index += 5

    optional: dict[str, str] = {}
    for label, field in (
        ("Expiration Time: ", "expiration-time"),
        ("Not Before: ", "not-before"),
        ("Request ID: ", "request-id"),
    ):
        if index < len(lines) and lines[index].startswith(label):
            optional[field] = lines[index][len(label) :]
            index += 1
    for field in ("expiration-time", "not-before"):
        if field in optional:
            parse_datetime(field, optional[field])
    if "request-id" in optional and not _REQUEST_ID.match(optional["request-id"]):
        raise SiweSyntaxError("request-id", "may hold only RFC 3986 pchar characters")

    resources: tuple[str, ...] | None = None
    if index < len(lines) and lines[index] == "Resources:":
        found: list[str] = []
        index += 1
        while index < len(lines) and lines[index].startswith("- "):
            resource = lines[index][2:]
            if not _URI.match(resource):
                raise SiweSyntaxError("resources", f"{resource!r} is not an RFC 3986 URI")
            found.append(resource)
            index += 1
        resources = tuple(found)
    if index < len(lines):
        raise SiweSyntaxError(
            "message",
            f"unexpected line {index + 1}: {lines[index]!r} (fields must come in EIP-4361 order, "
            "with no trailing newline)",
        )

    return SiweMessage(
        domain=domain,
        address=address,
        uri=uri,
        version=version,
        chain_id=int(chain_text),
        nonce=nonce,
        issued_at=issued_at,
        statement=statement,
        scheme=scheme,
        expiration_time=optional.get("expiration-time"),
        not_before=optional.get("not-before"),
        request_id=optional.get("request-id"),
        resources=resources,
    )


def format_message(message: SiweMessage) -> str:
    """The EIP-4361 text of `message` (what the wallet signs with EIP-191 personal_sign)."""
    origin = f"{message.scheme}://{message.domain}" if message.scheme else message.domain
    lines = [origin + HEADER_SUFFIX, message.address, ""]
    if message.statement is not None:
        lines.append(message.statement)
    lines += [
        "",
        f"URI: {message.uri}",
        f"Version: {message.version}",
        f"Chain ID: {message.chain_id}",
        f"Nonce: {message.nonce}",
        f"Issued At: {message.issued_at}",
    ]
    if message.expiration_time is not None:
        lines.append(f"Expiration Time: {message.expiration_time}")
    if message.not_before is not None:
        lines.append(f"Not Before: {message.not_before}")
    if message.request_id is not None:
        lines.append(f"Request ID: {message.request_id}")
    if message.resources is not None:
        lines.append("Resources:")
        lines += [f"- {resource}" for resource in message.resources]
    return "\n".join(lines)
