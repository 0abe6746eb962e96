"""Request and response models of the scoring service, with their limits.

Requests are parsed with ``model_validate_json`` (pydantic-core, strict about NaN/±inf: JSON has
no such literals, and an overflowing number such as ``1e999`` is rejected by the finite-float
constraint).  Limits: ``k`` in ``[1, MAX_K]``, at most ``MAX_CANDIDATES`` distinct candidates, at
most ``MAX_EVENTS`` events per feedback batch, ids of at most 128 characters.

>>> ScoreRequest.model_validate_json(b'{"user": 3, "k": 5}').k
5
>>> FeedbackRequest.model_validate_json(b'{"events": [{"event_id": "e", "score_id": "s", "item": 1, "reward": 1}]}').events[0].reward
1.0
"""
from __future__ import annotations

from typing import Annotated, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_K = 1000
MAX_CANDIDATES = 10_000
MAX_EVENTS = 1000
MAX_ITEM = (1 << 48) - 1
MAX_ID = (1 << 63) - 1

Id = Annotated[str, Field(min_length=1, max_length=128)]
ItemId = Annotated[int, Field(ge=0, le=MAX_ITEM, strict=True)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


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

    version: Optional[Annotated[int, Field(ge=1, strict=True)]] = None
