"""Request and response models of the scoring service, with their limits.

Requests are parsed with ``model_validate_json`` (pydantic-core, strict about NaN/±inf: JSON has
no such literals, and an overflowing number such as ``1e999`` is rejected by the finite-float
constraint).  Numbers are strict: a JSON number only (``"0.5"``, ``true`` are refused; an integer
is a valid reward or time, a float is not a valid id).  Limits: ``k`` in ``[1, MAX_K]``, at most
``MAX_CANDIDATES`` distinct candidates, at most ``MAX_EVENTS`` events per feedback batch, ids of
1 to 128 printable ASCII characters without spaces (no NUL, newline or other control character,
nothing that cannot be stored or logged as is), versions in ``[1, 2**63 - 1]``.

The response models are what the service answers (the handlers build plain dicts on the hot path;
the HTTP tests validate every answer against these models, which the OpenAPI document publishes).

>>> ScoreRequest.model_validate_json(b'{"user": 3, "k": 5}').k
5
>>> FeedbackRequest.model_validate_json(b'{"events": [{"event_id": "e", "score_id": "s", "item": 1, "reward": 1}]}').events[0].reward
1.0
>>> FeedbackRequest.model_validate_json(b'{"events": [{"event_id": "e 1", "score_id": "s", "item": 1, "reward": "1"}]}')
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 2 validation errors for FeedbackRequest
...
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_K = 1000
MAX_CANDIDATES = 10_000
MAX_EVENTS = 1000
MAX_ITEM = (1 << 48) - 1
MAX_ID = (1 << 63) - 1

ID_PATTERN = r"^[!-~]+$"          # printable ASCII, no space: safe to store, log and export as is
Id = Annotated[str, Field(min_length=1, max_length=128, pattern=ID_PATTERN)]
ItemId = Annotated[int, Field(ge=0, le=MAX_ITEM, strict=True)]
Finite = Annotated[float, Field(allow_inf_nan=False, strict=True)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScoreRequest(_Strict):
    """``POST /v1/score``: rank ``candidates`` (default: the user's clusters' items) for ``user``."""

    user: Annotated[int, Field(ge=0, le=MAX_ID, strict=True)]
    candidates: Optional[Annotated[list[ItemId], Field(min_length=1, max_length=MAX_CANDIDATES)]] = None
    k: Annotated[int, Field(ge=1, le=MAX_K, strict=True)] = 10

    @field_validator("candidates")
    @classmethod
    def _distinct(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and len(set(v)) != len(v):
            raise ValueError("candidates must be distinct")
        return v


class EventIn(_Strict):
    """One reward for ``item`` shown under ``score_id``; ``event_id`` is the idempotency key."""

    event_id: Id
    score_id: Id
    item: ItemId
    reward: Annotated[Finite, Field(ge=-1e6, le=1e6)]
    ts: Optional[Annotated[Finite, Field(ge=0, le=1e11)]] = None


class FeedbackRequest(_Strict):
    """``POST /v1/feedback``: a batch of events (the count limit is checked by the handler)."""

    events: list[EventIn] = Field(min_length=1)


class ReloadRequest(_Strict):
    """``POST /v1/params/reload``: load ``version`` (default: the one named by ``CURRENT``)."""

    version: Optional[Annotated[int, Field(ge=1, le=MAX_ID, strict=True)]] = None


# -- responses ---------------------------------------------------------------------------------

class ScoredItem(_Strict):
    item: int
    mean: float
    uncertainty: float
    score: float = Field(description="mean + alpha * uncertainty (fallback: the item's popularity share)")


class ScoreResponse(_Strict):
    score_id: str = Field(description="the impression's id; feedback refers to it")
    user: int
    version: int
    path: Literal["personal", "social", "fallback"]
    items: list[ScoredItem] = Field(description="best first")


class FeedbackResponse(_Strict):
    accepted: int = Field(description="events logged durably by this request")
    duplicates: int = Field(description="events already logged durably (by an earlier or a concurrent request)")
    last_seq: int = Field(description="highest log sequence number given to this request's events (0: none)")
    version: int


class ReloadResponse(_Strict):
    version: int
    previous_version: int
    replayed_events: int
    watermark_seq: int
    applied_seq: int
    seconds: float


class EventColumns(_Strict):
    event_id: list[str]
    score_id: list[str]
    item: list[int]
    reward: list[float]
    ts: list[float] = Field(description="seconds since the epoch")
    seq: list[int]


class ImpressionColumns(_Strict):
    score_id: list[str]
    user: list[int]
    cluster: list[int] = Field(description="-1 for a fallback impression (no cluster context)")
    weight: list[float]
    item: list[int]
    version: list[int]
    ts: list[float] = Field(description="seconds since the epoch")


class ExportResponse(_Strict):
    events: EventColumns
    impressions: ImpressionColumns
    next_since: int = Field(description="pass as since for the next page")
    count: int


class StatsResponse(_Strict):
    cluster: int
    version: int
    items: list[int]
    d: list[float]
    b: list[float]


class HealthResponse(_Strict):
    status: Literal["ok"]
    version: int
    applied_seq: int
    events_applied: int
    users: int
    edges: int
    store: dict[str, Any]
    uptime_s: float


class ErrorDetail(_Strict):
    code: str = Field(description="short machine code, e.g. invalid_request, store_unavailable")
    message: str
    details: Optional[Any] = None


class ErrorResponse(_Strict):
    """Every error: ``{"error": {"code", "message"[, "details"]}}``."""

    error: ErrorDetail
