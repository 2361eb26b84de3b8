"""The OpenAPI description of the campaign routes: the two body forms `POST /campaigns` reads
(JSON rows, or a multipart CSV upload), and the answers each route can give."""

from __future__ import annotations

from typing import Any

from ttsqueue.api.campaign_input import CampaignIn
from ttsqueue.api.schemas import ErrorBody, error_responses

_OWN_MEANINGS = {
    404: "Unknown campaign",
    409: "The campaign is not in a state this action applies to",
    415: "Body is neither JSON nor multipart/form-data",
}


def campaign_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Error answers of the campaign routes, all in the error shape."""
    answers = error_responses(*(s for s in statuses if s not in _OWN_MEANINGS))
    for status in statuses:
        if status in _OWN_MEANINGS:
            answers[status] = {"model": ErrorBody, "description": _OWN_MEANINGS[status]}
    return answers


_FORM_FIELDS = {
    name: {"type": "string"} for name in CampaignIn.model_fields if name not in {"rows"}
}


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its `$defs` written in place: an operation's own schema
    cannot carry `$defs` (ReDoc refuses `#/$defs/...` references), and none of ours recurse."""
    defs: dict[str, Any] = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    inlined: dict[str, Any] = resolve(schema)
    return inlined


CREATE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _inlined(CampaignIn.model_json_schema())},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "name", "template"],
                    "properties": {"file": {"type": "string", "format": "binary"}, **_FORM_FIELDS},
                }
            },
        },
    }
}

CREATE_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "dry_run: the rows checked, a preview, nothing created"},
    201: {"description": "Created: the rows accepted and refused, and the campaign"},
    **campaign_errors(400, 401, 413, 415, 422, 429, 503),
}

RESULTS_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "One line per row",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    },
    **campaign_errors(401, 404, 429, 503),
}
