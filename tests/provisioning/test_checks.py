"""Cross-reference checks, against what the file says and what is already stored."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

from callwarden.domain.directory import DirectorySnapshot
from callwarden.provisioning import Provisioner, ProvisioningError

STORED = """\
teams: [{name: support}, {name: sales}]
users:
  - {username: carol, role: operator, team: sales, extension: "1001"}
queues:
  - {name: sales, number: "5001", team: sales}
trunks:
  - {name: old, host: 192.0.2.9, inbound_numbers: [{number: "0399", destination: "1001"}]}
"""

CASES = [
    pytest.param(
        "users:\n  - {username: bob, role: operator, team: nowhere}\n",
        ["check.yaml:2: users[0].team: unknown team 'nowhere'"],
        id="unknown-team",
    ),
    pytest.param(
        "users:\n  - {username: bob, role: operater}\n",
        ["check.yaml:2: users[0].role: unknown role 'operater'"],
        id="unknown-role",
    ),
    pytest.param(
        "users:\n  - {username: bob, role: operator, supervises: [support, nowhere]}\n",
        ["check.yaml:2: users[0].supervises[1]: unknown team 'nowhere'"],
        id="unknown-supervised-team",
    ),
    pytest.param(
        "queues:\n  - name: billing\n    number: '5000'\n    team: support\n"
        "    members: [carol, dave, carol]\n",
        [
            "check.yaml:5: queues[0].members[1]: unknown user 'dave'",
            "check.yaml:5: queues[0].members[2]: 'carol' is listed twice",
        ],
        id="queue-members",
    ),
    pytest.param(
        "teams:\n  - {name: a, parent: b}\n  - {name: b, parent: a}\n  - {name: c, parent: c}\n"
        "  - {name: d, parent: nowhere}\n",
        [
            "check.yaml:2: teams[0].parent: teams would nest in a cycle: a -> b -> a",
            "check.yaml:3: teams[1].parent: teams would nest in a cycle: b -> a -> b",
            "check.yaml:4: teams[2].parent: a team cannot be its own parent",
            "check.yaml:5: teams[3].parent: unknown team 'nowhere'",
        ],
        id="team-nesting",
    ),
    pytest.param(
        "teams: [{name: x}, {name: x}]\nusers:\n  - {username: bob, role: operator}\n"
        "  - {username: bob, role: operator}\n",
        [
            "check.yaml:1: teams[1].name: 'x' is listed twice (first as teams[0])",
            "check.yaml:4: users[1].username: 'bob' is listed twice (first as users[0])",
        ],
        id="duplicate-names",
    ),
    pytest.param(
        """\
        users:
          - {username: bob, role: operator, extension: "2001"}
          - {username: dan, role: operator, extension: "2001"}
          - {username: eve, role: operator, extension: "5000"}
          - {username: fay, role: operator, extension: "1001"}
        queues:
          - {name: billing, number: "5000", team: support}
          - {name: billing2, number: "5001", team: support}
        """,
        [
            "check.yaml:3: users[1].extension: '2001' is already the extension of 'bob'",
            "check.yaml:5: users[3].extension: '1001' is already the extension of user 'carol' "
            "(not in this file)",
            "check.yaml:7: queues[0].number: '5000' is already the extension of 'eve'",
            "check.yaml:8: queues[1].number: '5001' is already the number of queue 'sales' "
            "(not in this file)",
        ],
        id="number-clashes",
    ),
    pytest.param(
        """\
        trunks:
          - name: a
            host: carrier.example
            inbound_numbers: ["0311", {number: "0312", destination: "4444"}]
          - {name: b, host: 192.0.2.2, inbound_numbers: ["0311", "0399"]}
        """,
        [
            "check.yaml:4: trunks[0].inbound_numbers[1].destination: '4444' is neither an "
            "extension nor a queue number",
            "check.yaml:5: trunks[1].inbound_numbers[0]: '0311' is already an inbound number "
            "of trunk 'a'",
            "check.yaml:5: trunks[1].inbound_numbers[1]: '0399' is already an inbound number "
            "of trunk 'old' (not in this file)",
        ],
        id="inbound-numbers",
    ),
    pytest.param(
        "users:\n  - {username: carol, role: operator, extension: '1002'}\n",
        [
            "check.yaml:1: trunk 'old' (not in this file) sends 0399 to '1001', which would no "
            "longer exist"
        ],
        id="stored-trunk-loses-its-destination",
    ),
    pytest.param(
        "prune: true\nteams: [{name: support}]\nusers:\n  - {username: carol, role: operator}\n",
        [
            "check.yaml:4: users[0].team: team 'sales' is not in this file, "
            "and prune: true removes it"
        ],
        id="prune-removes-a-team-still-in-use",
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_reference_problems_reject_the_file(
    provisioner: Provisioner,
    snapshot: Callable[[], DirectorySnapshot],
    text: str,
    expected: list[str],
) -> None:
    provisioner.apply_text(STORED, "stored.yaml")
    before = snapshot()
    with pytest.raises(ProvisioningError) as caught:
        provisioner.apply_text(textwrap.dedent(text), "check.yaml")
    assert [str(problem) for problem in caught.value.problems] == expected
    after = snapshot()
    assert (after.users, after.teams, after.queues, after.trunks) == (
        before.users,
        before.teams,
        before.queues,
        before.trunks,
    )


def test_references_may_point_at_objects_stored_earlier(
    provisioner: Provisioner, snapshot: Callable[[], DirectorySnapshot]
) -> None:
    provisioner.apply_text(STORED, "stored.yaml")
    report = provisioner.apply_text(
        "queues:\n  - {name: billing, number: '5000', team: support, members: [carol]}\n"
        "trunks:\n  - {name: new, host: 192.0.2.3, inbound_numbers: "
        "[{number: '0300', destination: '5000'}]}\n",
        "more.yaml",
    )
    assert report.created == 2
    billing = snapshot().queue_by_name("billing")
    assert billing is not None and len(billing.members) == 1
