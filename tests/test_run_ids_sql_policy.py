"""The run-id rule, its escaping helpers and the read-only SQL policy: pure functions, no Spark."""

from __future__ import annotations

import re

import pytest

from lisearch.config import load_settings
from lisearch.errors import ConfigError, InputError
from lisearch.run_ids import (
    check_run_id,
    is_run_id,
    new_run_id,
    partition_folder,
    partition_uri,
    run_predicate,
    sql_string,
)
from lisearch.sql_policy import check_read_only, statement_keyword, write_reason

GOOD_IDS = ["default", "q93", "a", "A.b_c-1", "2026-12-04", "x" * 64]
BAD_IDS = ["", "nl\n", "\nnl", "-lead", ".hidden", "_x", "a b", "a/b", "../x", "x" * 65, "zz' OR run_id <> '",
           "a\tb", "a=b", "é", "a;b"]  # fmt: skip


@pytest.mark.parametrize("value", GOOD_IDS)
def test_good_run_ids_pass_unchanged(value: str):
    assert is_run_id(value) and check_run_id(value) == value


@pytest.mark.parametrize("value", BAD_IDS)
def test_bad_run_ids_are_refused_with_the_value_shown(value: str):
    assert not is_run_id(value)
    with pytest.raises(InputError) as info:
        check_run_id(value, "narrow.run_id")
    assert f"narrow.run_id is {value!r}" in str(info.value) and "letters, digits" in str(info.value)


def test_a_trailing_newline_does_not_pass_as_the_old_pattern_let_it():
    """The finding: ``^...$`` with ``match`` accepted 'nl\\n' ($ matches before a final newline)."""
    assert re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", "nl\n") is not None  # the old rule
    assert not is_run_id("nl\n")


@pytest.mark.parametrize("key", ["run.id", "screen.run_id", "narrow.run_id", "measured.run_id", "shortlist.run_id"])
@pytest.mark.parametrize("value", ["nl\n", "zz' OR run_id <> '", "../../etc"])
def test_every_run_id_setting_is_checked_when_settings_load(key: str, value: str):
    """One setting, run.id; the per-section keys of earlier versions set it too, through the same check."""
    with pytest.raises(ConfigError, match=r"run\.id is "):
        load_settings("local", [f"{key}={value}"])
    assert load_settings("local", [f"{key}=r1"]).run.id == "r1"


def test_minted_ids_follow_the_rule_and_differ():
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50 and all(is_run_id(i) for i in ids)


def test_sql_string_cannot_be_closed_from_inside():
    assert sql_string("it's") == "'it\\'s'"
    assert sql_string("a\\' OR 1=1 --") == "'a\\\\\\' OR 1=1 --'"


def test_run_predicate_checks_before_quoting():
    assert run_predicate("q93") == "run_id = 'q93'"
    with pytest.raises(InputError):
        run_predicate("zz' OR run_id <> '")


def test_partition_folder_and_uri_follow_spark_and_the_delta_protocol():
    assert partition_folder("a.b_c-1") == "run_id=a.b_c-1" == partition_uri("a.b_c-1")
    # the escaping itself (values the rule refuses, through the private helper): Hive's %XX in the folder name,
    # then URI encoding of the whole path in the add action
    from lisearch.run_ids import _hive_escape

    assert _hive_escape("nl\n:a/b%") == "nl%0A%3Aa%2Fb%25"
    with pytest.raises(InputError):
        partition_folder("nl\n")


# ------------------------------------------------------------------------------------------------ SQL policy
READS = [
    "SELECT 1",
    "  select stage, count FROM funnel WHERE run_id = 'default' ORDER BY stage_order",
    "(SELECT 1) UNION (SELECT 2)",
    "WITH t AS (SELECT 1 AS a) SELECT a FROM t",
    "-- a comment\nSELECT 1",
    "/* nested /* comment */ DELETE */ SELECT 1",
    "SELECT * FROM candidates WHERE note = 'DELETE FROM candidates'",
    "SELECT `update`, `drop` FROM t",
    "SELECT replace(formula, 'O', 'S') FROM shortlist",
    "SHOW TABLES",
    "SHOW CREATE TABLE candidates",
    "DESCRIBE HISTORY candidates",
    "DESC candidates",
    "EXPLAIN SELECT * FROM funnel",
    "VALUES (1, 2)",
    "TABLE funnel",
    "SELECT 1;",
    "SELECT 1; -- trailing comment",
]
WRITES = [
    ("DELETE FROM candidates WHERE run_id = 'x'", "DELETE statement"),
    ("INSERT INTO runs VALUES ('x')", "INSERT statement"),
    ("RESTORE TABLE candidates TO VERSION AS OF 1", "RESTORE statement"),
    ("VACUUM candidates RETAIN 0 HOURS", "VACUUM statement"),
    ("UPDATE runs SET status = 'failed'", "UPDATE statement"),
    ("MERGE INTO runs USING x ON a = b WHEN MATCHED THEN DELETE", "MERGE statement"),
    ("DROP TABLE funnel", "DROP statement"),
    ("CREATE TABLE x AS SELECT 1", "CREATE statement"),
    ("SET spark.databricks.delta.retentionDurationCheck.enabled = false", "SET statement"),
    ("WITH t AS (SELECT 1) INSERT INTO runs SELECT * FROM t", "contains INSERT"),
    ("FROM funnel INSERT INTO runs SELECT *", "contains INSERT"),
    ("SELECT 1; DELETE FROM candidates", "more than one statement"),
    ("EXPLAIN DELETE FROM candidates", "contains DELETE"),
    ("SELECT reflect('java.lang.System', 'exit', 0)", "reflect()"),
    ("SELECT java_method('java.lang.System', 'getProperty', 'user.home')", "java_method()"),
    ("/* only a comment */", "no statement"),
    ("", "no statement"),
]


@pytest.mark.parametrize("query", READS)
def test_reads_pass(query: str):
    assert write_reason(query) is None
    assert check_read_only(query) == query


@pytest.mark.parametrize(("query", "why"), WRITES)
def test_writes_are_refused_naming_why_and_the_write_flag(query: str, why: str):
    reason = write_reason(query)
    assert reason is not None and why in reason
    with pytest.raises(InputError, match="--write"):
        check_read_only(query)


@pytest.mark.parametrize("query", ["SELECT 'open", "SELECT `open", "SELECT 1 /* open"])
def test_unclosed_quotes_and_comments_are_refused_as_unreadable(query: str):
    with pytest.raises(InputError, match="never closed"):
        write_reason(query)


def test_statement_keyword():
    assert statement_keyword("  (( select 1))") == "SELECT"
    assert statement_keyword("-- x\n delete from t") == "DELETE"
    assert statement_keyword("") == ""


def test_a_misspelt_first_word_is_a_parse_error_not_a_refusal():
    with pytest.raises(InputError, match="does not parse: it starts with 'SELEKT'"):
        check_read_only("SELEKT * FROM funnel")
