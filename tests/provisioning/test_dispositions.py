"""Wrap-up disposition codes through the provisioning file (SQLite and PostgreSQL): stored in
order with their labels, unchanged when absent, replaced whole, cleared by `[]`, refused with a
clear message when a code repeats or a label is missing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from callwarden.provisioning import Provisioner, ProvisioningError
from callwarden.store.database import Database
from callwarden.web.dispositions.store import DispositionCode, DispositionStore

Write = Callable[..., Path]

CODES = """\
dispositions:
  - {code: resolved, label_ja: 解決, label_en: Resolved}
  - {code: callback, label_ja: 折り返し, label_en: Call back}
"""


def _codes(database: Database) -> tuple[DispositionCode, ...]:
    return DispositionStore(database.sessions).codes()


def test_codes_are_stored_in_order_and_kept_when_absent(
    provisioner: Provisioner, database: Database, write_yaml: Write
) -> None:
    provisioner.apply_file(write_yaml(CODES))
    assert _codes(database) == (
        DispositionCode("resolved", "解決", "Resolved"),
        DispositionCode("callback", "折り返し", "Call back"),
    )
    assert _codes(database)[1].label("en") == "Call back"
    provisioner.apply_file(write_yaml("teams: [{name: support}]\n"))
    assert [code.code for code in _codes(database)] == ["resolved", "callback"]
    provisioner.apply_file(
        write_yaml("dispositions: [{code: sale, label_ja: 成約, label_en: Sale}]\n")
    )
    assert _codes(database) == (DispositionCode("sale", "成約", "Sale"),)
    provisioner.apply_file(write_yaml("dispositions: []\n"))
    assert _codes(database) == ()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (CODES + "  - {code: resolved, label_ja: 再, label_en: Again}\n", "listed once"),
        ("dispositions: [{code: sale, label_ja: 成約}]\n", "label_en"),
        ("dispositions: [{code: '', label_ja: 成約, label_en: Sale}]\n", "code"),
    ],
)
def test_bad_codes_are_refused_and_nothing_changes(
    provisioner: Provisioner, database: Database, write_yaml: Write, text: str, words: str
) -> None:
    provisioner.apply_file(write_yaml(CODES))
    with pytest.raises(ProvisioningError) as refused:
        provisioner.apply_file(write_yaml(text))
    assert words in str(refused.value)
    assert [code.code for code in _codes(database)] == ["resolved", "callback"]
