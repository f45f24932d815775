"""Model cards as data: the sections, how complete a card is, how its input is checked, how a
slice table is imported, and how a new version's card is carried over from the previous one.
Pure functions over plain values (no queries), so the rules are easy to read and test.

Completeness rules (`completeness`): a card has twelve sections of equal weight; the score is
the share of complete sections, rounded to a whole percent. "Blank" means empty or only
whitespace. A section is complete when:

- model_details: its overview and its owners are not blank;
- intended_use: its primary uses and its out-of-scope uses are not blank;
- factors, evaluation_data, fairness_considerations, ethical_considerations,
  risks_and_mitigations, caveats_and_recommendations: the text is not blank;
- training_data: it names at least one catalog dataset version, or its notes are not blank
  (data that is not in the catalog can still be described);
- training_procedure: its pipeline source or its code version is not blank;
- metrics: at least one metric has a numeric value;
- quantitative_analysis: the slice table has at least one row.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping
from typing import Any

from django.utils.safestring import SafeString

from apps.core.markdown import render_markdown

SECTIONS: dict[str, str] = {
    "model_details": "Model details",
    "intended_use": "Intended use",
    "factors": "Factors",
    "training_data": "Training data",
    "training_procedure": "Training procedure",
    "evaluation_data": "Evaluation data",
    "metrics": "Metrics",
    "quantitative_analysis": "Quantitative analysis",
    "fairness_considerations": "Fairness considerations",
    "ethical_considerations": "Ethical considerations",
    "risks_and_mitigations": "Risks and mitigations",
    "caveats_and_recommendations": "Caveats and recommendations",
}
CONSIDERATION_SECTIONS = (
    "fairness_considerations",
    "ethical_considerations",
    "risks_and_mitigations",
    "caveats_and_recommendations",
)
TEXT_SECTIONS = ("factors", "evaluation_data", *CONSIDERATION_SECTIONS)
MODEL_DETAILS_KEYS = ("overview", "owners", "version", "date", "license", "references", "citation")
INTENDED_USE_KEYS = ("primary_uses", "primary_users", "out_of_scope_uses")
TRAINING_PROCEDURE_KEYS = ("pipeline_source", "code_version", "environment", "hyperparameters", "training_duration")
METRIC_KEYS = ("name", "value", "threshold", "ci_low", "ci_high", "slice")
SLICE_COLUMNS = ("slice", "group", "metric", "value")
# Every field of ModelCard that holds card content (what is copied, diffed and edited).
CARD_FIELDS = (
    "model_details",
    "intended_use",
    "factors",
    "training_data",
    "training_data_notes",
    "training_procedure",
    "evaluation_data",
    "metrics",
    "quantitative_analysis",
    *CONSIDERATION_SECTIONS,
)

MAX_TEXT_CHARS = 50_000
MAX_SHORT_TEXT_CHARS = 500
MAX_LIST_ROWS = 1_000
MAX_HYPERPARAMETERS = 1_000
MAX_TRAINING_DATASETS = 200
MAX_SLICE_TABLE_BYTES = 1024 * 1024
MAX_SLICE_TABLE_ROWS = 1_000


class CardInputError(ValueError):
    """Card content that cannot be saved; the message says which field and why."""


# --- Completeness -----------------------------------------------------------------------------


def _blank(value: Any) -> bool:
    return not isinstance(value, str) or not value.strip()


def _section_complete(section: str, card: Any) -> bool:
    if section == "model_details":
        details = card.model_details or {}
        return not _blank(details.get("overview")) and not _blank(details.get("owners"))
    if section == "intended_use":
        use = card.intended_use or {}
        return not _blank(use.get("primary_uses")) and not _blank(use.get("out_of_scope_uses"))
    if section == "training_data":
        return bool(card.training_data) or not _blank(card.training_data_notes)
    if section == "training_procedure":
        procedure = card.training_procedure or {}
        return not _blank(procedure.get("pipeline_source")) or not _blank(procedure.get("code_version"))
    if section == "metrics":
        return any(_is_number((row or {}).get("value")) for row in card.metrics or [])
    if section == "quantitative_analysis":
        return bool(card.quantitative_analysis)
    return not _blank(getattr(card, section))


def completeness(card: Any) -> tuple[int, list[str]]:
    """(score 0..100, the keys of the incomplete sections in card order). `card` is a ModelCard
    or anything with the same attributes. See the module docstring for the rules."""
    missing = [section for section in SECTIONS if not _section_complete(section, card)]
    score = round(100 * (len(SECTIONS) - len(missing)) / len(SECTIONS))
    return score, missing


# --- Rendering --------------------------------------------------------------------------------


def rendered_text(card: Any) -> dict[str, SafeString]:
    """Every free-text part of the card as sanitized HTML, keyed `section` or `section.part`
    (e.g. `model_details.overview`). Markdown is rendered and then cleaned by nh3, so script,
    event handlers and javascript: links never reach the page."""
    html: dict[str, SafeString] = {}
    for key in MODEL_DETAILS_KEYS:
        html[f"model_details.{key}"] = render_markdown((card.model_details or {}).get(key) or "")
    for key in INTENDED_USE_KEYS:
        html[f"intended_use.{key}"] = render_markdown((card.intended_use or {}).get(key) or "")
    for key in ("pipeline_source", "environment"):
        html[f"training_procedure.{key}"] = render_markdown((card.training_procedure or {}).get(key) or "")
    html["training_data_notes"] = render_markdown(card.training_data_notes)
    for section in TEXT_SECTIONS:
        html[section] = render_markdown(getattr(card, section))
    return html


# --- Input checks -----------------------------------------------------------------------------


def clean_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """The card fields in `changes`, checked and normalised; CardInputError names the first
    problem. Unknown fields are refused rather than ignored, so a typo is not a silent no-op."""
    unknown = sorted(set(changes) - set(CARD_FIELDS))
    if unknown:
        raise CardInputError(f"Unknown model card field(s): {', '.join(unknown)}.")
    cleaned: dict[str, Any] = {}
    for field, value in changes.items():
        if field == "model_details":
            cleaned[field] = _text_mapping(field, value, MODEL_DETAILS_KEYS)
        elif field == "intended_use":
            cleaned[field] = _text_mapping(field, value, INTENDED_USE_KEYS)
        elif field == "training_procedure":
            cleaned[field] = _training_procedure(value)
        elif field == "training_data":
            cleaned[field] = _dataset_version_ids(value)
        elif field == "metrics":
            cleaned[field] = _metric_rows(value)
        elif field == "quantitative_analysis":
            cleaned[field] = slice_rows(value, where="quantitative_analysis")
        else:
            cleaned[field] = _text(field, value, MAX_TEXT_CHARS)
    return cleaned


def _text(where: str, value: Any, limit: int, *, allow_none: bool = True) -> str:
    if value is None and allow_none:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise CardInputError(f"{where} must be text.")
    if len(value) > limit:
        raise CardInputError(f"{where} is {len(value)} characters long; the limit is {limit}.")
    return value


def _text_mapping(field: str, value: Any, keys: tuple[str, ...]) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise CardInputError(f"{field} must be an object with the keys {', '.join(keys)}.")
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise CardInputError(f"{field} has unknown key(s) {', '.join(unknown)}; expected {', '.join(keys)}.")
    return {key: _text(f"{field}.{key}", value.get(key), MAX_TEXT_CHARS) for key in keys}


def _training_procedure(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise CardInputError(
            f"training_procedure must be an object with the keys {', '.join(TRAINING_PROCEDURE_KEYS)}."
        )
    unknown = sorted(set(value) - set(TRAINING_PROCEDURE_KEYS))
    if unknown:
        raise CardInputError(f"training_procedure has unknown key(s) {', '.join(unknown)}.")
    hyperparameters = value.get("hyperparameters") or {}
    if not isinstance(hyperparameters, Mapping):
        raise CardInputError("training_procedure.hyperparameters must be an object of name: value.")
    if len(hyperparameters) > MAX_HYPERPARAMETERS:
        raise CardInputError(f"training_procedure.hyperparameters has more than {MAX_HYPERPARAMETERS} entries.")
    return {
        "pipeline_source": _text("training_procedure.pipeline_source", value.get("pipeline_source"), MAX_TEXT_CHARS),
        "code_version": _text("training_procedure.code_version", value.get("code_version"), MAX_SHORT_TEXT_CHARS),
        "environment": _text("training_procedure.environment", value.get("environment"), MAX_TEXT_CHARS),
        "hyperparameters": {
            _text("training_procedure.hyperparameters key", key, 250): _text(
                f"training_procedure.hyperparameters.{key}", item, 6000
            )
            for key, item in hyperparameters.items()
        },
        "training_duration": _text(
            "training_procedure.training_duration", value.get("training_duration"), MAX_SHORT_TEXT_CHARS
        ),
    }


def _dataset_version_ids(value: Any) -> list[int]:
    if not isinstance(value, list):
        raise CardInputError("training_data must be a list of catalog dataset version ids.")
    if len(value) > MAX_TRAINING_DATASETS:
        raise CardInputError(f"training_data lists more than {MAX_TRAINING_DATASETS} dataset versions.")
    ids: list[int] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | str) or not str(item).isdigit():
            raise CardInputError(f"training_data: {item!r} is not a dataset version id.")
        if int(item) not in ids:
            ids.append(int(item))
    return ids


def _number(where: str, value: Any, *, required: bool = False) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise CardInputError(f"{where} is required and must be a number.")
        return None
    if isinstance(value, bool):
        raise CardInputError(f"{where} must be a number, not {value!r}.")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise CardInputError(f"{where} must be a number, not {value!r}.")
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise CardInputError(f"{where} must be a finite number, not {value!r}.")
    return float(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _metric_rows(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise CardInputError("metrics must be a list of {name, value, threshold, ci_low, ci_high, slice}.")
    if len(value) > MAX_LIST_ROWS:
        raise CardInputError(f"metrics has more than {MAX_LIST_ROWS} rows.")
    rows = []
    for index, row in enumerate(value):
        where = f"metrics[{index}]"
        if not isinstance(row, Mapping):
            raise CardInputError(f"{where} must be an object.")
        unknown = sorted(set(row) - set(METRIC_KEYS))
        if unknown:
            raise CardInputError(f"{where} has unknown key(s) {', '.join(unknown)}; expected {', '.join(METRIC_KEYS)}.")
        name = _text(f"{where}.name", row.get("name"), 250)
        if not name.strip():
            raise CardInputError(f"{where}.name is required.")
        rows.append(
            {
                "name": name,
                "value": _number(f"{where}.value", row.get("value")),
                "threshold": _number(f"{where}.threshold", row.get("threshold")),
                "ci_low": _number(f"{where}.ci_low", row.get("ci_low")),
                "ci_high": _number(f"{where}.ci_high", row.get("ci_high")),
                "slice": _text(f"{where}.slice", row.get("slice"), MAX_SHORT_TEXT_CHARS),
            }
        )
    return rows


def slice_rows(value: Any, *, where: str = "rows") -> list[dict[str, Any]]:
    """Quantitative-analysis rows `{slice, group, metric, value}`, checked: slice and metric
    are required text, group is optional text, value a finite number."""
    if not isinstance(value, list):
        raise CardInputError(f"{where} must be a list of {{slice, group, metric, value}} rows.")
    if len(value) > MAX_SLICE_TABLE_ROWS:
        raise CardInputError(f"{where} has {len(value)} rows; the limit is {MAX_SLICE_TABLE_ROWS}.")
    rows = []
    for index, row in enumerate(value):
        at = f"{where}[{index}]"
        if not isinstance(row, Mapping):
            raise CardInputError(f"{at} must be an object with the keys {', '.join(SLICE_COLUMNS)}.")
        keys = set(row)
        if keys != set(SLICE_COLUMNS):
            raise CardInputError(_columns_message(at, keys))
        cleaned = {
            "slice": _text(f"{at}.slice", row["slice"], MAX_SHORT_TEXT_CHARS).strip(),
            "group": _text(f"{at}.group", row["group"], MAX_SHORT_TEXT_CHARS).strip(),
            "metric": _text(f"{at}.metric", row["metric"], 250).strip(),
            "value": _number(f"{at}.value", row["value"], required=True),
        }
        for required in ("slice", "metric"):
            if not cleaned[required]:
                raise CardInputError(f"{at}.{required} is required.")
        rows.append(cleaned)
    return rows


def _columns_message(where: str, columns: set[str]) -> str:
    missing = [column for column in SLICE_COLUMNS if column not in columns]
    extra = sorted(columns - set(SLICE_COLUMNS))
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing)}")
    if extra:
        parts.append(f"unexpected {', '.join(extra)}")
    return f"{where}: the columns must be exactly {', '.join(SLICE_COLUMNS)} ({'; '.join(parts)})."


# --- Slice-table import -----------------------------------------------------------------------


def parse_slice_table(content: bytes, fmt: str) -> list[dict[str, Any]]:
    """The rows of an uploaded slice table: CSV with a header row `slice,group,metric,value`
    (any order), or JSON (a list of such objects, or `{"rows": [...]}`). At most
    MAX_SLICE_TABLE_BYTES and MAX_SLICE_TABLE_ROWS rows; CardInputError says what is wrong
    (with the CSV line or JSON row)."""
    if len(content) > MAX_SLICE_TABLE_BYTES:
        raise CardInputError(
            f"The slice table is {len(content):,} bytes; the limit is {MAX_SLICE_TABLE_BYTES // 1024:,} KB."
        )
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CardInputError("The slice table is not UTF-8 text.")
    fmt = (fmt or "").lower().lstrip(".")
    if fmt == "csv":
        return _csv_rows(text)
    if fmt == "json":
        return _json_rows(text)
    raise CardInputError(f"Unsupported slice table format {fmt!r}: use csv or json.")


def _csv_rows(text: str) -> list[dict[str, Any]]:
    if "\x00" in text:
        raise CardInputError("Malformed CSV: the file contains NUL bytes.")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise CardInputError("The CSV is empty: expected a header row slice,group,metric,value.")
        columns = [cell.strip().lower() for cell in header]
        if len(set(columns)) != len(columns):
            raise CardInputError("Malformed CSV: the header repeats a column.")
        if set(columns) != set(SLICE_COLUMNS):
            raise CardInputError(_columns_message("CSV header", set(columns)))
        raw_rows = []
        for cells in reader:
            if not cells or not any(cell.strip() for cell in cells):
                continue  # blank lines, e.g. a trailing newline
            if len(cells) != len(columns):
                raise CardInputError(
                    f"Malformed CSV at line {reader.line_num}: {len(cells)} fields where the header has {len(columns)}."
                )
            raw_rows.append(dict(zip(columns, cells, strict=True)))
            if len(raw_rows) > MAX_SLICE_TABLE_ROWS:
                raise CardInputError(f"The slice table has more than {MAX_SLICE_TABLE_ROWS} rows.")
    except csv.Error as exc:
        raise CardInputError(f"Malformed CSV at line {reader.line_num}: {exc}.")
    if not raw_rows:
        raise CardInputError("The slice table has a header but no rows.")
    return slice_rows(raw_rows, where="row")


def _json_rows(text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CardInputError(f"Malformed JSON: {exc}.")
    if isinstance(data, Mapping) and set(data) == {"rows"}:
        data = data["rows"]
    if not isinstance(data, list):
        raise CardInputError('The JSON must be a list of {slice, group, metric, value} objects (or {"rows": [...]}).')
    if not data:
        raise CardInputError("The slice table has no rows.")
    return slice_rows(data, where="row")


# --- Carrying a card to the next version ------------------------------------------------------


def empty_sections() -> dict[str, Any]:
    return {
        "model_details": dict.fromkeys(MODEL_DETAILS_KEYS, ""),
        "intended_use": dict.fromkeys(INTENDED_USE_KEYS, ""),
        "factors": "",
        "training_data": [],
        "training_data_notes": "",
        "training_procedure": {
            "pipeline_source": "",
            "code_version": "",
            "environment": "",
            "hyperparameters": {},
            "training_duration": "",
        },
        "evaluation_data": "",
        "metrics": [],
        "quantitative_analysis": [],
        **dict.fromkeys(CONSIDERATION_SECTIONS, ""),
    }


def sections_of(card: Any) -> dict[str, Any]:
    """The card's content as a plain dict of CARD_FIELDS (deep-copied through JSON)."""
    return json.loads(json.dumps({field: getattr(card, field) for field in CARD_FIELDS}))


def refreshed(sections: Mapping[str, Any], *, version: int, date: str, facts: Mapping[str, Any] | None) -> dict:
    """A card for a new version, starting from `sections` (the previous version's card, or
    empty ones): what people wrote is kept; the parts that describe one particular version
    are refilled. Those are the version and date, and — from `facts` about the version's run
    (see services._run_facts) — training data, pipeline source, code version,
    hyperparameters, training duration and metrics (thresholds are kept for metrics of the
    same name). Without a run they are emptied, since they described the previous run. The
    slice table is emptied too: its numbers measured the previous version."""
    card = {**empty_sections(), **json.loads(json.dumps(dict(sections)))}
    card["model_details"] = {**dict.fromkeys(MODEL_DETAILS_KEYS, ""), **card["model_details"]}
    card["model_details"]["version"] = str(version)
    card["model_details"]["date"] = date
    procedure = {**empty_sections()["training_procedure"], **card["training_procedure"]}
    facts = facts or {}
    procedure["pipeline_source"] = facts.get("pipeline_source", "")
    procedure["code_version"] = facts.get("code_version", "")
    procedure["hyperparameters"] = dict(facts.get("hyperparameters", {}))
    procedure["training_duration"] = facts.get("training_duration", "")
    card["training_procedure"] = procedure
    card["training_data"] = list(facts.get("training_data", []))
    thresholds = {row.get("name"): row.get("threshold") for row in card["metrics"] if not row.get("slice")}
    card["metrics"] = [
        {
            "name": name,
            "value": value,
            "threshold": thresholds.get(name),
            "ci_low": None,
            "ci_high": None,
            "slice": "",
        }
        for name, value in facts.get("metrics", [])
    ]
    card["quantitative_analysis"] = []
    return card


def format_duration(milliseconds: int | None) -> str:
    """A run's duration for people: `1 h 02 min`, `3 min 05 s`, `12 s`."""
    if milliseconds is None or milliseconds < 0:
        return ""
    seconds = int(milliseconds // 1000)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s"
