"""A dbt test that stops the pipeline says what was expected, which rows broke it (file and
line of the landing file they come from) and what to do next (issue 23: the runner printed
``GATE FAILED <asset> <test>:`` and nothing else)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
from pathlib import Path

import duckdb
import pytest

from triangulate.gate_messages import (
    GateFailure,
    expected_text,
    failing_rows_sql,
    trace_landing_lines,
)

GEOS = "geo,name,population_weight\n501,North,3\n602,South,1\n"
OFFLINE_HEADER = "date,channel,campaign,geo,spend,currency,period\n"


def _run_offline(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    files: dict[str, str],
    selection: str = 'key:"raw/offline_spend" or key:"staging/stg_offline__spend"',
    console: list[str] | None = None,
) -> str:
    """Land ``files`` and run ``selection`` (by default the offline ingest and its staging
    model) through Dagster, as ``triangulate run`` does; the runner's printed lines. With
    ``console``, what the run printed while it ran (its progress lines and stdout) is
    appended to it."""
    from dagster_project.runner import materialize_selection

    for name, text in {"reference/geos.csv": GEOS, **files}.items():
        path = home / "landing" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.setenv("TRIANGULATE_HOME", str(home))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    lines: list[str] = []
    if console is None:
        ok = materialize_selection(selection, echo=lines.append)
    else:
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            ok = materialize_selection(selection, echo=lines.append, progress_echo=console.append)
        console.extend(stdout.getvalue().splitlines())
    assert not ok, "the bad row should stop the run"
    return "\n".join(lines)


def _gate_block(log: str, check: str, model: str = "stg_offline__spend") -> str:
    """The GATE FAILED line of ``check`` and the lines of its description."""
    start = log.index(f"GATE FAILED staging/{model} {check}:")
    end = log.find("\nGATE FAILED", start + 1)
    end = log.find("\nFAILED ", start) if end < 0 else end
    return log[start : end if end > 0 else None]


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[str]]:
    """One run on a landing zone with a month-long row and two weekly rows not on a Monday:
    the runner's lines after it, and the console while it ran."""
    good = "".join(f"2025-03-{d:02d},tv,tv_spot,501,100.00,USD,day\n" for d in range(3, 10))
    bad = "2025-03-10,tv,tv_spot,602,80.00,USD,month\n"
    weeks = [f"2025-03-{d:02d},podcast,host_read,,70.00,USD,week\n" for d in (3, 10, 17, 24)]
    weeks[1] = "2025-03-11,podcast,host_read,,70.00,USD,week\n"  # a Tuesday, line 3
    weeks[3] = "2025-03-26,podcast,host_read,,70.00,USD,week\n"  # a Wednesday, line 5
    files = {
        "offline/good.csv": OFFLINE_HEADER + good,
        "offline/tv.csv": OFFLINE_HEADER + good + bad,  # restates good.csv, then line 9
        "offline/podcast.csv": OFFLINE_HEADER + "".join(weeks),
    }
    console: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        log = _run_offline(tmp_path_factory.mktemp("gates") / "home", mp, files, console=console)
    return log, console


@pytest.fixture(scope="module")
def offline_log(offline_run: tuple[str, list[str]]) -> str:
    return offline_run[0]


DBT_NODE_LINE = re.compile(r"\b\d+ of \d+ (START|OK|PASS)\b")
"""dbt's per-node progress (``1 of 9 START sql table model ...``, ``OK created``, ``PASS``)."""


@pytest.mark.slow
def test_dbt_prints_one_summary_line_and_names_failing_tests(offline_run) -> None:
    """Issue #20: a run's console has one summary line per dbt invocation (counts and
    time) after the one that says it started, not one per node; a failing dbt test is still
    named there, at ERROR."""
    _, console = offline_run
    text = "\n".join(console)
    assert [line.split(" ", 1)[1] for line in console if "dbt build:" in line][:1] == [
        "       dbt_models: dbt build: started"
    ], text
    summaries = [line for line in console if re.search(r"dbt build: \d+ model", line)]
    assert len(summaries) == 1, text
    assert re.search(
        r"dbt build: \d+ models?, \d+ tests?: \d+ passed, 0 warned, [1-9]\d* errored, "
        r"\d+ skipped in \d",
        summaries[0],
    ), summaries[0]
    assert not DBT_NODE_LINE.search(text), text
    assert "Running dbt command" not in text and "\x1b[" not in text, text  # dagster-dbt's, colours
    failing = [line for line in console if " FAIL " in line]
    assert any("accepted_values_stg_offline__spend_period__day__week" in f for f in failing), text
    assert len(console) < 40, text


@pytest.mark.slow
class _Invocation:
    """dagster-dbt's invocation as :class:`DbtConsole` sees it: ``stream_raw_events``
    writes each event's text to stdout (as dagster-dbt does) and yields it."""

    def __init__(self, raw_events: list[dict | str]) -> None:
        self.raw_events = raw_events

    def stream_raw_events(self):
        import sys

        for raw in self.raw_events:
            if isinstance(raw, str):  # not a dbt event: written, not yielded
                sys.stdout.write(raw + "\n")
                continue
            sys.stdout.write(raw["info"]["msg"] + "\n")
            yield _Event(raw)


class _Event:
    def __init__(self, raw: dict) -> None:
        self.raw_event = raw

    def __str__(self) -> str:
        return self.raw_event["info"]["msg"]


def _dbt(name: str, level: str, msg: str, unique_id: str | None = None, status: str = ""):
    data = {"node_info": {"unique_id": unique_id, "node_status": status}} if unique_id else {}
    return {"info": {"name": name, "level": level, "msg": msg}, "data": data}


def test_dbt_console_logs_progress_at_debug_and_problems_at_their_level(capsys) -> None:
    """The console rule on a scripted dbt build (fast; the slow test above runs dbt)."""
    from dagster_project.assets.transform import DbtConsole

    model, failing, warning = "model.p.m", "test.p.accepted_values_m_x", "test.p.not_null_m_y"
    events = [
        _dbt("LogStartLine", "info", "1 of 4 START sql table model main.m", model),
        _dbt("LogModelResult", "info", "1 of 4 OK created sql table model main.m", model, "success"),
        _dbt("LogTestResult", "error", "2 of 4 FAIL 1 accepted_values_m_x [\x1b[31mFAIL 1\x1b[0m]",
             failing, "fail"),
        _dbt("LogTestResult", "warn", "3 of 4 WARN 2 not_null_m_y [WARN 2]", warning, "warn"),
        _dbt("SkippingDetails", "info", "4 of 4 SKIP relation main.n", "model.p.n"),
        "a line that is not a dbt event",
        _dbt("RunResultFailure", "error", "Failure in test accepted_values_m_x (models/m.yml)"),
        _dbt("StatsLine", "info", "Done. PASS=1 WARN=1 ERROR=1 SKIP=1 NO-OP=0 TOTAL=4"),
    ]  # fmt: skip
    log = logging.getLogger("test.dbt_console")
    log.setLevel(logging.DEBUG)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    log.addHandler(handler)
    try:
        invocation = DbtConsole(log, "build").attach(_Invocation(events))
        assert len(list(invocation.stream_raw_events())) == 7
    finally:
        log.removeHandler(handler)
    assert capsys.readouterr().out == ""  # nothing reaches stdout
    by_level = {
        level: [r.getMessage() for r in records if r.levelno == level]
        for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR)
    }
    assert by_level[logging.ERROR] == [
        "2 of 4 FAIL 1 accepted_values_m_x [FAIL 1]",
        "Failure in test accepted_values_m_x (models/m.yml)",
    ]
    assert by_level[logging.WARNING] == [
        "3 of 4 WARN 2 not_null_m_y [WARN 2]",
        "dbt build: a line that is not a dbt event",
    ]
    started, summary = by_level[logging.INFO]
    assert started == "dbt build: started"
    assert re.fullmatch(
        r"dbt build: 2 models, 2 tests: 1 passed, 1 warned, 1 errored, 1 skipped in \d+\.\ds",
        summary,
    ), summary
    assert "1 of 4 START sql table model main.m" in by_level[logging.DEBUG]


def test_a_bad_offline_period_names_the_file_line_and_next_step(offline_log: str) -> None:
    block = _gate_block(offline_log, "accepted_values_stg_offline__spend_period__day__week")
    assert "expected: period is one of day, week" in block, block
    assert "found: 1 row breaks it" in block, block
    # line 9 of the file: the header is line 1, the bad row the 8th data row
    assert "landing/offline/tv.csv:9  period=month" in block, block
    assert "next: Write `day` or `week` in the `period` column" in block, block


@pytest.mark.slow
def test_a_weekly_row_not_on_a_monday_names_each_bad_line(offline_log: str) -> None:
    block = _gate_block(offline_log, "offline_weekly_rows_are_dated_on_a_monday")
    assert "holds on every row" in block and "must be a Monday" in block, block
    assert "found: 2 rows break it" in block, block
    assert "landing/offline/podcast.csv:3 " in block and "landing/offline/podcast.csv:5 " in block
    assert "next: Date each weekly row on the Monday its week starts" in block, block


def _stripe_delivery(received_at: str, event: dict) -> str:
    """One line of a landed Stripe webhook file (the receiver's format: the raw body as a
    JSON string)."""
    record = {"received_at": received_at, "headers": {"stripe-signature": "t=1,v1=x"}}
    return json.dumps({**record, "body": json.dumps(event)}) + "\n"


def _stripe_event(event_id: str, event_type: str | None) -> dict:
    event = {
        "id": event_id,
        "object": "event",
        "created": 1741000000,
        "data": {
            "object": {
                "object": "payment_intent",
                "id": f"pi_{event_id}",
                "amount_received": 1000,
                "currency": "usd",
            }
        },
    }
    return {**event, "type": event_type} if event_type else event


@pytest.mark.slow
def test_a_failing_test_on_an_incremental_staging_model_names_the_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """stg_stripe__events is incremental (its failing rows cannot be traced by re-running the
    model over slices of raw): it carries the kept delivery's own _file and _line."""
    good = [
        _stripe_delivery(
            f"2025-03-0{d}T10:00:00Z", _stripe_event(f"evt_ok{d}", "payment_intent.succeeded")
        )
        for d in (1, 2)
    ]
    untyped = _stripe_event("evt_untyped", None)  # no `type`: event_type is null
    files = {
        # line 2 is the first delivery of the untyped event; b.ndjson:1 a later retry of it
        "webhooks/stripe/a.ndjson": good[0]
        + _stripe_delivery("2025-03-03T10:00:00Z", untyped)
        + good[1],
        "webhooks/stripe/b.ndjson": _stripe_delivery("2025-03-04T10:00:00Z", untyped),
    }
    log = _run_offline(
        tmp_path / "home",
        monkeypatch,
        files,
        'key:"raw/stripe_events" or key:"staging/stg_stripe__events"',
    )
    block = _gate_block(log, "not_null_stg_stripe__events_event_type", "stg_stripe__events")
    assert "expected: event_type is never null" in block, block
    assert "found: 1 row breaks it" in block, block
    assert "landing/webhooks/stripe/a.ndjson:2  event_type=null event_id=evt_untyped" in block, (
        block
    )


# --------------------------------------------------------------------------- library
@pytest.fixture
def conn():
    with duckdb.connect() as c:
        c.execute("create schema raw")
        c.execute(
            "create table raw.things as select 'a.csv' as _file, i + 1 as _line, "
            "case when i in (56, 139) then null else 'x' end as name, i % 7 as k "
            "from range(200) t(i) "
            "union all select 'b.csv', 2, 'y', 3 union all select 'b.csv', 3, 'y', 3"
        )
        yield c


MODEL_SQL = 'with source as (select * from "raw"."things") select name, k from source'
NOT_NULL = {
    "name": "not_null_stg_things_name",
    "column_name": "name",
    "test_metadata": {"name": "not_null", "kwargs": {"column_name": "name"}},
}


def test_failing_rows_are_traced_to_their_lines_by_halving(conn) -> None:
    conn.execute(f"create view raw.stg_things as {MODEL_SQL}")
    sql = failing_rows_sql(
        NOT_NULL, "select name from raw.stg_things where name is null", "raw.stg_things"
    )
    traced = trace_landing_lines(
        conn,
        failing_sql=sql,
        model_sql=MODEL_SQL,
        model_relation="raw.stg_things",
        source_relation='"raw"."things"',
    )
    assert [where for where, _ in traced] == ["landing/a.csv:57", "landing/a.csv:140"]
    assert [row["k"] for _, row in traced] == [56 % 7, 139 % 7]


def test_rows_that_only_break_a_test_together_are_named_as_a_range(conn) -> None:
    model_sql = f"{MODEL_SQL} where _file = 'b.csv'"  # b.csv's two rows are one key
    conn.execute(f"create view raw.stg_things as {model_sql}")
    unique = {
        "name": "unique_combination_of_columns_stg_things",
        "test_metadata": {
            "name": "unique_combination_of_columns",
            "kwargs": {"combination_of_columns": ["name", "k"]},
        },
    }
    test_sql = "select name, k, count(*) as n from raw.stg_things group by 1, 2 having count(*) > 1"
    traced = trace_landing_lines(
        conn,
        failing_sql=failing_rows_sql(unique, test_sql, "raw.stg_things"),
        model_sql=model_sql,
        model_relation="raw.stg_things",
        source_relation='"raw"."things"',
    )
    assert [where for where, _ in traced] == ["landing/b.csv:2-3"]
    assert expected_text(unique) == "one row per (name, k)"


def test_the_message_has_expected_rows_and_next_step() -> None:
    failure = GateFailure(
        test="accepted_values_x_channel",
        model="marts.x",
        expected=expected_text(
            {
                "column_name": "channel",
                "description": "channels are registered",
                "test_metadata": {"name": "accepted_values", "kwargs": {"values": ["a", "b"]}},
            }
        ),
        failing_rows=2,
        sample=[{"channel": "radio", "payload": "{...}"}, {"channel": "fax"}],
        origins=["", ""],
        sources=["landing/offline/"],
    )
    text = failure.message()
    assert text.splitlines()[1] == "expected: channel is one of a, b [channels are registered]"
    assert "found: 2 rows break it, e.g.\n  channel=radio\n  channel=fax\n" in text
    assert "(built from landing/offline/)" in text  # no lineage: where to look
    assert text.splitlines()[-1].startswith("next: Fix the rows listed at their source")
