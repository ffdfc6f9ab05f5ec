"""Pydantic models at the edges: LLM response schemas, extraction results, --json output."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.dataclasses import dataclass

from .records import ASSET_TYPES  # noqa: F401  (defined without pydantic for the read path)

AssetType = Literal["character", "prop", "location"]


# ---- LLM response schemas (keys exactly as the prompts ask for them) -------------------------


class RawMention(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    sceneNumber: int
    text: str = ""
    context: str = ""


class RawEntity(BaseModel):
    name: str = Field(min_length=1)
    type: AssetType
    aliases: list[str] = Field(default_factory=list)
    mentions: list[RawMention] = Field(default_factory=list)
    # optional breakdown category (breakdown/categories.py checks it; anything else is ignored)
    category: str | None = None

    @field_validator("category", mode="before")
    @classmethod
    def _any_category(cls, v: object) -> object:
        return v if isinstance(v, str) else None

    @field_validator("type", mode="before")
    @classmethod
    def _lower_type(cls, v: object) -> object:
        return v.strip().lower() if isinstance(v, str) else v


class Pass1Response(BaseModel):
    entities: list[RawEntity]


class Distilled(BaseModel):
    description: str = Field(min_length=1)
    confidenceScore: float = Field(ge=0.0, le=1.0)
    isPriority: bool
    hasVisualConflicts: bool
    conflictDetails: str | None = ""


# ---- extraction results shared by the built-in and the LLM extractors ------------------------


@dataclass(slots=True)
class Mention:
    """Where an asset is named: a scene, the words, a quote around them. A validated slotted
    dataclass, not a model: a long script's assets hold hundreds of thousands (~100 bytes each
    instead of ~450); change one with dataclasses.replace."""

    scene_number: int
    text: str = ""
    context: str = ""


class ExtractedAsset(BaseModel):
    """One asset as an extractor hands it to the store (extract/merge.py, assets.py)."""

    name: str
    type: AssetType
    aliases: list[str] = Field(default_factory=list)
    mentions: list[Mention] = Field(default_factory=list)
    description: str = ""
    confidence_score: float = 0.0
    is_priority: bool = False
    has_conflicts: bool = False
    conflict_details: str = ""
    # free-form evidence the extractor wants to keep (line counts, etc.)
    extra: dict = Field(default_factory=dict)

    @property
    def scenes(self) -> list[int]:
        return sorted({m.scene_number for m in self.mentions})
