"""A version's model card for other tools and for paper: Markdown in the Hugging Face model-card
style (YAML front matter + sections), JSON with the Model Card Toolkit's (v0.0.2 schema) field
names, and a printable, self-contained HTML page.

`card_document` gathers what all three need (and what the version page shows) in a fixed
number of queries; the three renderers are then pure functions of it. Free text stays Markdown
in the Markdown and JSON exports (it is the author's text); the HTML renders it through
apps.core.markdown, which sanitizes it, so script never reaches a page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from django.template.loader import render_to_string
from django.urls import reverse

from apps.registry import cards, page_selectors
from apps.registry.models import ModelCard, ModelVersion, RegisteredModel

# The Model Card Toolkit keys this export writes (tests/registry/test_exports.py checks them).
MCT_SCHEMA_VERSION = "0.0.2"


@dataclass
class CardDocument:
    model: RegisteredModel
    version: ModelVersion
    card: ModelCard
    score: int
    missing: list[dict[str, str]]
    html: dict[str, Any]
    # [{id, label, url}] — training datasets from the card, hidden ones labelled as such.
    datasets: list[dict[str, Any]] = field(default_factory=list)

    @property
    def details(self) -> dict[str, str]:
        return {key: (self.card.model_details or {}).get(key, "") for key in cards.MODEL_DETAILS_KEYS}

    @property
    def intended_use(self) -> dict[str, str]:
        return {key: (self.card.intended_use or {}).get(key, "") for key in cards.INTENDED_USE_KEYS}

    @property
    def procedure(self) -> dict[str, Any]:
        return {**cards.empty_sections()["training_procedure"], **(self.card.training_procedure or {})}

    @property
    def missing_keys(self) -> set[str]:
        return {item["key"] for item in self.missing}

    @property
    def title(self) -> str:
        return f"{self.model.name} v{self.version.version}"


def card_document(user, model: RegisteredModel, version: ModelVersion) -> CardDocument | None:
    """Everything a rendering of the version's card needs (the version comes from
    page_selectors.version_page_data, so its card is already loaded); None without a card."""
    card = page_selectors._card_or_none(version)
    if card is None:
        return None
    score, missing = cards.completeness(card)
    visible = page_selectors.dataset_versions_by_id(user, card.training_data or [])
    datasets = []
    for pk in card.training_data or []:
        found = visible.get(pk)
        if found is None:
            datasets.append({"id": pk, "label": "A catalog dataset version you cannot see", "url": None})
        else:
            datasets.append(
                {
                    "id": pk,
                    "label": f"{found.dataset.name} v{found.number}",
                    "url": reverse("catalog:dataset", args=[found.dataset.slug]),
                }
            )
    return CardDocument(
        model=model,
        version=version,
        card=card,
        score=score,
        missing=[{"key": key, "label": cards.SECTIONS[key]} for key in missing],
        html=cards.rendered_text(card),
        datasets=datasets,
    )


# --- JSON (Model Card Toolkit field names) ----------------------------------------------------


def _lines(text: str) -> list[str]:
    return [line.strip(" -*\t") for line in (text or "").splitlines() if line.strip(" -*\t")]


def _descriptions(*texts: str) -> list[dict[str, str]]:
    return [{"description": text.strip()} for text in texts if text and text.strip()]


def _number_text(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def performance_metrics(document: CardDocument) -> list[dict[str, Any]]:
    """The card's metrics, then its slice table, as MCT performance metrics (values as text,
    as the schema has them); a confidence interval only when both bounds are known."""
    rows = []
    for metric in document.card.metrics or []:
        row: dict[str, Any] = {
            "type": metric.get("name", ""),
            "value": _number_text(metric.get("value")),
            "slice": metric.get("slice", "") or "",
        }
        if metric.get("ci_low") is not None and metric.get("ci_high") is not None:
            row["confidence_interval"] = {
                "lower_bound": _number_text(metric["ci_low"]),
                "upper_bound": _number_text(metric["ci_high"]),
            }
        rows.append(row)
    for item in document.card.quantitative_analysis or []:
        where = f"{item['slice']}={item['group']}" if item.get("group") else item.get("slice", "")
        rows.append({"type": item.get("metric", ""), "value": _number_text(item.get("value")), "slice": where})
    return rows


def model_card_json(document: CardDocument, *, base_url: str = "") -> dict[str, Any]:
    """The card as a Model Card Toolkit JSON document (schema v0.0.2 field names)."""
    details, use = document.details, document.intended_use
    card = document.card
    owners = [{"name": name, "contact": ""} for name in _lines(details["owners"])]
    if owners and document.model.owner.email:
        owners[0]["contact"] = document.model.owner.email
    train_names = [item["label"] for item in document.datasets]
    train_link = next((base_url + item["url"] for item in document.datasets if item["url"]), "")
    return {
        "schema_version": MCT_SCHEMA_VERSION,
        "model_details": {
            "name": document.model.name,
            "overview": details["overview"],
            "version": {"name": str(document.version.version), "date": details["date"]},
            "owners": owners,
            "licenses": [{"identifier": details["license"].strip()}] if details["license"].strip() else [],
            "references": [{"reference": line} for line in _lines(details["references"])],
            "citations": [{"citation": details["citation"].strip()}] if details["citation"].strip() else [],
        },
        "model_parameters": {
            "model_architecture": document.version.flavor or "",
            "data": {
                "train": {
                    "name": ", ".join(train_names) or card.training_data_notes.strip(),
                    "link": train_link,
                },
                "eval": {"name": card.evaluation_data.strip(), "link": ""},
            },
        },
        "quantitative_analysis": {"performance_metrics": performance_metrics(document)},
        "considerations": {
            "users": _descriptions(use["primary_users"]),
            "use_cases": _descriptions(use["primary_uses"]),
            "limitations": _descriptions(use["out_of_scope_uses"], card.caveats_and_recommendations),
            "tradeoffs": _descriptions(card.fairness_considerations),
            "ethical_considerations": (
                [
                    {
                        "name": card.ethical_considerations.strip(),
                        "mitigation_strategy": card.risks_and_mitigations.strip(),
                    }
                ]
                if card.ethical_considerations.strip() or card.risks_and_mitigations.strip()
                else []
            ),
        },
    }


# --- Markdown (Hugging Face model-card style) -------------------------------------------------


def front_matter(document: CardDocument) -> dict[str, Any]:
    """The YAML metadata block of a Hugging Face model card (license, library, tags, datasets,
    metrics and a model-index with the card's metric values)."""
    details = document.details
    metrics = [row for row in document.card.metrics or [] if row.get("value") is not None]
    tags = ["causeway", *sorted(tag.key for tag in document.model.tags.all())]
    results = [
        {
            "task": {"type": "other"},
            "dataset": {"name": document.card.evaluation_data.strip()[:200] or "evaluation", "type": "other"},
            "metrics": [
                {
                    "type": row["name"],
                    "value": row["value"],
                    "name": row["name"] + (f" ({row['slice']})" if row.get("slice") else ""),
                }
                for row in metrics
            ],
        }
    ]
    return {
        "model_name": document.model.name,
        "model_version": document.version.version,
        "license": details["license"].strip() or "other",
        "library_name": document.version.flavor or "",
        "tags": tags,
        "datasets": [item["label"] for item in document.datasets],
        "metrics": sorted({row["name"] for row in metrics}),
        "model-index": [{"name": document.model.name, "results": results if metrics else []}],
    }


def _section(title: str, text: str, level: int = 2) -> str:
    body = (text or "").strip() or "_Not documented yet._"
    return f"{'#' * level} {title}\n\n{body}\n"


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        return str("" if value is None else value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def model_card_markdown(document: CardDocument) -> str:
    """The card as a Hugging Face style README: YAML front matter, then its sections."""
    details, use, procedure, card = document.details, document.intended_use, document.procedure, document.card
    meta = yaml.safe_dump(front_matter(document), sort_keys=False, allow_unicode=True, default_flow_style=False)
    parts = [f"---\n{meta}---\n", f"# Model card for {document.model.name} (version {document.version.version})\n"]
    facts = [
        f"- **Owners:** {details['owners'].strip() or '—'}",
        f"- **Version:** {document.version.version}" + (f" ({details['date']})" if details["date"] else ""),
        f"- **License:** {details['license'].strip() or '—'}",
        f"- **Model type:** {document.version.flavor or '—'}",
        f"- **Card completeness:** {document.score}%",
    ]
    parts.append(_section("Model details", details["overview"]) + "\n" + "\n".join(facts) + "\n")
    parts.append("## Uses\n")
    parts.append(_section("Direct use", use["primary_uses"], 3))
    parts.append(_section("Primary users", use["primary_users"], 3))
    parts.append(_section("Out-of-scope use", use["out_of_scope_uses"], 3))
    parts.append("## Bias, risks, and limitations\n")
    parts.append(_section("Fairness considerations", card.fairness_considerations, 3))
    parts.append(_section("Ethical considerations", card.ethical_considerations, 3))
    parts.append(_section("Risks and mitigations", card.risks_and_mitigations, 3))
    parts.append(_section("Recommendations", card.caveats_and_recommendations, 3))
    parts.append("## Training details\n")
    training = "\n".join(f"- {item['label']}" for item in document.datasets)
    if card.training_data_notes.strip():
        training = (training + "\n\n" if training else "") + card.training_data_notes.strip()
    parts.append(_section("Training data", training, 3))
    procedure_lines = [
        f"- **{label}:** {procedure[key]}"
        for key, label in (
            ("pipeline_source", "Pipeline source"),
            ("code_version", "Code version"),
            ("environment", "Environment"),
            ("training_duration", "Training duration"),
        )
        if str(procedure.get(key) or "").strip()
    ]
    hyper = procedure.get("hyperparameters") or {}
    if hyper:
        procedure_lines.append(
            "\n" + _table(["Hyperparameter", "Value"], [[key, value] for key, value in hyper.items()])
        )
    parts.append(_section("Training procedure", "\n".join(procedure_lines), 3))
    parts.append("## Evaluation\n")
    parts.append(_section("Testing data", card.evaluation_data, 3))
    parts.append(_section("Factors", card.factors, 3))
    metric_rows = [
        [
            row.get("name"),
            _number_text(row.get("value")),
            _number_text(row.get("threshold")),
            _interval(row),
            row.get("slice") or "",
        ]
        for row in card.metrics or []
    ]
    parts.append(
        _section(
            "Metrics",
            _table(["Metric", "Value", "Threshold", "95% CI", "Slice"], metric_rows) if metric_rows else "",
            3,
        )
    )
    slice_rows = [
        [row["slice"], row["group"], row["metric"], _number_text(row["value"])]
        for row in card.quantitative_analysis or []
    ]
    parts.append(
        _section("Results by slice", _table(["Slice", "Group", "Metric", "Value"], slice_rows) if slice_rows else "", 3)
    )
    if details["references"].strip():
        parts.append(_section("References", details["references"]))
    if details["citation"].strip():
        parts.append(f"## Citation\n\n```\n{details['citation'].strip()}\n```\n")
    return "\n".join(parts)


def _interval(row: dict) -> str:
    if row.get("ci_low") is None or row.get("ci_high") is None:
        return ""
    return f"{_number_text(row['ci_low'])} – {_number_text(row['ci_high'])}"


# --- Printable HTML -----------------------------------------------------------------------------


def model_card_html(document: CardDocument, *, request=None, standalone: bool = True) -> str:
    """The card as one HTML page (print styles inline, no script, no navigation); text is
    sanitized Markdown."""
    context = {"doc": document, "standalone": standalone, "metric_rows": metric_rows(document)}
    return render_to_string("registry/card_print.html", context, request=request)


def metric_rows(document: CardDocument) -> list[dict[str, str]]:
    return [
        {
            "name": row.get("name", ""),
            "value": _number_text(row.get("value")),
            "threshold": _number_text(row.get("threshold")),
            "interval": _interval(row),
            "slice": row.get("slice") or "",
        }
        for row in document.card.metrics or []
    ]
