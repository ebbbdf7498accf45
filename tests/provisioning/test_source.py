"""Reading and validating provisioning files: every fault is named with its line and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from callwarden.domain.models import QueueStrategy, RecordingPolicy, Transport
from callwarden.provisioning.errors import Problem, ProvisioningError
from callwarden.provisioning.source import Locator, parse_text, read_file, validate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

ISSUE_EXAMPLE = (Path(__file__).parent / "data" / "issue-example.yaml").read_text()

VALID_USERS = """\
teams:
  - name: support
users:
  - username: alice
    role: operator
    team: support
    extension: "1001"
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(ProvisioningError) as caught:
        parse_text(textwrap.dedent(text), "callcenter.yaml")
    return [str(problem) for problem in caught.value.problems]


def test_the_format_of_the_issue_parses_with_defaults() -> None:
    document = parse_text(ISSUE_EXAMPLE, "callcenter.yaml").document
    assert [team.name for team in document.teams] == ["support"]
    user = document.users[0]
    assert (user.username, user.role, user.team, user.extension) == (
        "alice",
        "operator",
        "support",
        "1001",
    )
    assert user.enabled and user.given("password") and not user.given("enabled")
    queue = document.queues[0]
    assert queue.strategy is QueueStrategy.LONGEST_IDLE
    assert queue.recording is RecordingPolicy.ALL
    assert [member.user for member in queue.members] == ["alice"]
    assert (queue.members[0].penalty, queue.members[0].skill_level) == (0, 1)
    trunk = document.trunks[0]
    assert (trunk.host, trunk.port, trunk.transport) == ("192.0.2.10", 5060, Transport.UDP)
    assert [(n.number, n.destination) for n in trunk.inbound_numbers] == [("0312345678", None)]
    assert not document.prune


def test_the_shipped_example_is_valid() -> None:
    loaded = read_file(EXAMPLES / "callcenter.yaml")
    assert loaded.document.teams and loaded.document.users and loaded.document.queues


def test_an_empty_file_is_an_empty_document() -> None:
    document = parse_text("# nothing yet\n", "empty.yaml").document
    assert (document.users, document.teams, document.prune) == ([], [], False)


FAULTS = [
    pytest.param(
        VALID_USERS
        + """\
  - username: bob
    role: operator
    extension: "10x1"
""",
        ["callcenter.yaml:10: users[1].extension: must be digits (1 to 15 of them)"],
        id="extension-not-digits",
    ),
    pytest.param(
        "users:\n  - {username: bob, role: operator, extension: 1002}\n",
        ['callcenter.yaml:2: users[0].extension: must be a quoted string of digits, e.g. "1001"'],
        id="unquoted-number",
    ),
    pytest.param(
        "users:\n  - username: bob\n    role: operator\n    pasword: very secret password\n",
        ["callcenter.yaml:4: users[0].pasword: unknown key (did you mean 'password'?)"],
        id="misspelt-key",
    ),
    pytest.param(
        "userz: []\n",
        ["callcenter.yaml:1: userz: unknown key (did you mean 'users'?)"],
        id="misspelt-section",
    ),
    pytest.param(
        "users:\n  - username: bob\n    team: support\n",
        ["callcenter.yaml:2: users[0].role: is required"],
        id="missing-key",
    ),
    pytest.param(
        "users:\n  - {username: Bob, role: operator}\n  - {username: 7, role: operator}\n",
        [
            "callcenter.yaml:2: users[0].username: must be 1-64 characters of a-z, 0-9, '.', '_' "
            "or '-', starting with a letter",
            "callcenter.yaml:3: users[1].username: must be a string",
        ],
        id="usernames",
    ),
    pytest.param(
        "users:\n  - {username: bob, role: operator, password: short}\n",
        ["callcenter.yaml:2: users[0].password: must be at least 12 characters long"],
        id="short-password",
    ),
    pytest.param(
        'users:\n  - {username: bob, role: operator, display_name: "Bob\\u202eevil"}\n',
        ["callcenter.yaml:2: users[0].display_name: must not contain control characters"],
        id="bidi-override-in-name",
    ),
    pytest.param(
        "users:\n  - {username: bob, role: operator, enabled: 'no'}\n",
        ["callcenter.yaml:2: users[0].enabled: must be true or false"],
        id="quoted-boolean",
    ),
    pytest.param(
        "trunks:\n  - name: carrier\n    host: bad host\n    port: 70000\n"
        "    transport: sctp\n    outbound_patterns: ['0[1-9XX']\n",
        [
            "callcenter.yaml:3: trunks[0].host: must be an IP address or a host name",
            "callcenter.yaml:4: trunks[0].port: must be at most 65535",
            "callcenter.yaml:5: trunks[0].transport: must be one of 'udp', 'tcp' or 'tls'",
            "callcenter.yaml:6: trunks[0].outbound_patterns[0]: invalid dial pattern '0[1-9XX': "
            "unclosed '[' at position 2",
        ],
        id="trunk-fields",
    ),
    pytest.param(
        "trunks:\n  - {name: a, host: 0.0.0.0}\n  - {name: b, host: 224.0.0.1}\n"
        "  - {name: c, host: '-x.example'}\n  - {name: d, host: '1.2.3'}\n",
        [
            "callcenter.yaml:2: trunks[0].host: must be a unicast address (not unspecified, "
            "multicast or broadcast)",
            "callcenter.yaml:3: trunks[1].host: must be a unicast address (not unspecified, "
            "multicast or broadcast)",
            "callcenter.yaml:4: trunks[2].host: must be an IP address or a host name",
            "callcenter.yaml:5: trunks[3].host: must be an IP address or a host name",
        ],
        id="hosts",
    ),
    pytest.param(
        "trunks:\n  - name: carrier\n    host: sip.example.net\n    register: true\n",
        ["callcenter.yaml:2: trunks[0]: register: true needs a username and a password"],
        id="register-without-credentials",
    ),
    pytest.param(
        "trunks:\n  - name: carrier\n    host: sip.example.net\n    inbound_numbers:\n"
        "      - '+4930'\n      - {number: '031-234', destination: '5000'}\n",
        [
            "callcenter.yaml:6: trunks[0].inbound_numbers[1].number: must be digits (1 to 20), "
            "optionally after a leading '+'",
        ],
        id="inbound-number",
    ),
    pytest.param(
        "queues:\n  - name: q\n    number: '5000'\n    team: t\n    strategy: fastest\n"
        "    members: [alice, {user: bob, penalty: -1}, 42]\n",
        [
            "callcenter.yaml:5: queues[0].strategy: must be one of 'longest_idle', 'round_robin', "
            "'fewest_calls', 'ring_all' or 'skills'",
            "callcenter.yaml:6: queues[0].members[1].penalty: must be at least 0",
            "callcenter.yaml:6: queues[0].members[2]: must be a mapping of keys to values",
        ],
        id="queue-fields",
    ),
    pytest.param(
        "teams:\n  - name: support\n    name: sales\n",
        ["callcenter.yaml:3: teams[0].name: duplicate key (first at line 2)"],
        id="duplicate-yaml-key",
    ),
    pytest.param(
        "teams:\n  - &t {name: support}\n  - *t\n",
        ["callcenter.yaml:2: teams[1]: anchors and aliases are not supported"],
        id="alias",
    ),
    pytest.param(
        "teams:\n  - <<: {name: support}\n",
        ["callcenter.yaml:2: teams[0]: merge keys are not supported"],
        id="merge-key",
    ),
    pytest.param(
        "- name: support\n",
        [
            "callcenter.yaml:1: must be a mapping with the keys version, prune, roles, teams, "
            "users, trunks, queues"
        ],
        id="not-a-mapping",
    ),
    pytest.param(
        "teams:\n  - name: support\n  users: []\n",
        [
            "callcenter.yaml:3: invalid YAML: while parsing a block collection "
            "did not find expected '-' indicator"
        ],
        id="yaml-syntax",
    ),
    pytest.param(
        "teams: []\n---\nusers: []\n",
        [
            "callcenter.yaml:2: invalid YAML: expected a single document in the stream "
            "but found another document"
        ],
        id="two-documents",
    ),
    pytest.param(
        "version: 2\nprune: 'yes'\n",
        [
            "callcenter.yaml:1: version: must be at most 1",
            "callcenter.yaml:2: prune: must be true or false",
        ],
        id="version-and-prune",
    ),
]


@pytest.mark.parametrize(("text", "expected"), FAULTS)
def test_faults_name_line_and_field(text: str, expected: list[str]) -> None:
    assert _problems(text) == expected


def test_the_error_message_lists_every_problem() -> None:
    with pytest.raises(ProvisioningError) as caught:
        parse_text("users:\n  - {username: bob}\n  - {username: eve}\n", "callcenter.yaml")
    error = caught.value
    assert error.error_id == "provisioning_rejected"
    assert error.message == (
        "callcenter.yaml: 2 problems, nothing was changed\n"
        "callcenter.yaml:2: users[0].role: is required\n"
        "callcenter.yaml:3: users[1].role: is required"
    )
    assert error.details["problems"] == [
        {"line": 2, "path": "users[0].role", "message": "is required"},
        {"line": 3, "path": "users[1].role", "message": "is required"},
    ]


def test_a_document_without_yaml_has_no_line_numbers() -> None:
    with pytest.raises(ProvisioningError) as caught:
        validate({"users": [{"username": "bob", "role": 5}]}, Locator("api", None))
    assert caught.value.problems == (Problem("api", None, "users[0].role", "must be a string"),)


def test_unreadable_files_are_problems_too(tmp_path: Path) -> None:
    with pytest.raises(ProvisioningError, match="cannot read the file: No such file"):
        read_file(tmp_path / "missing.yaml")
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"teams: [{name: caf\xe9}]\n")
    with pytest.raises(ProvisioningError, match=r"not UTF-8 text \(byte 18\)"):
        read_file(latin1)
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"#" * (5 * 1024 * 1024 + 1))
    with pytest.raises(ProvisioningError, match="larger than 5242880 bytes"):
        read_file(huge)


@pytest.mark.parametrize(
    ("depth", "problem"),
    [
        (999, "deep.yaml: nested too deeply"),
        (
            100_000,
            "deep.yaml:1: invalid YAML: while increasing flow level exceeded maximum nesting depth",
        ),
    ],
)
def test_deep_nesting_is_refused_quickly_not_crashed(depth: int, problem: str) -> None:
    with pytest.raises(ProvisioningError) as caught:
        parse_text("teams: " + "[" * depth + "]" * depth, "deep.yaml")
    assert [str(found) for found in caught.value.problems] == [problem]


@pytest.mark.parametrize(
    ("host", "stored"),
    [
        ("[2001:db8::1]", "2001:db8::1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("SIP.Example.NET", "sip.example.net"),
        ("127.0.0.1", "127.0.0.1"),
    ],
)
def test_hosts_are_normalised(host: str, stored: str) -> None:
    text = f"trunks:\n  - {{name: carrier, host: '{host}'}}\n"
    assert parse_text(text, "t.yaml").document.trunks[0].host == stored


KEYS = sorted(
    {"teams", "users", "queues", "trunks", "roles", "prune", "version", "name", "username"}
    | {"role", "team", "extension", "members", "number", "host", "port", "parent", "password"}
    | {"inbound_numbers", "destination", "outbound_patterns", "strategy", "user", "register"}
)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_a_document_or_a_provisioning_error(text: str) -> None:
    try:
        parse_text(text, "fuzz.yaml")
    except ProvisioningError as error:
        assert error.problems


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6))
def test_any_data_is_a_document_or_a_provisioning_error(data: dict[str, object]) -> None:
    try:
        validate(data, Locator("fuzz", None))
    except ProvisioningError as error:
        assert all(problem.message and problem.line is None for problem in error.problems)
    text = yaml.safe_dump(data)
    try:
        parse_text(text, "fuzz.yaml")
    except ProvisioningError as error:
        lines = text.count("\n") + 1
        assert all(
            problem.line is not None and 1 <= problem.line <= lines for problem in error.problems
        )
