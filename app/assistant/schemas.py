"""Agents (admin-managed presets) and the models a user may pick."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints, model_validator

from app.chat.schemas import AgentName, ModelName
from app.core.types import DocumentModel, RequestModel, UTCDateTime

INSTRUCTIONS_MAX = 32_000
DESCRIPTION_MAX = 500
MAX_OUTPUT_TOKENS = 1_000_000

Instructions = Annotated[str, StringConstraints(max_length=INSTRUCTIONS_MAX)]
Description = Annotated[str, StringConstraints(max_length=DESCRIPTION_MAX)]
Temperature = Annotated[float, Field(ge=0, le=2)]
OutputTokens = Annotated[int, Field(ge=1, le=MAX_OUTPUT_TOKENS)]


class AgentCreate(RequestModel):
    name: AgentName = Field(description="A slug, unique: lowercase letters, digits, - and _")
    model: ModelName
    instructions: Instructions = Field(default="", description="The system prompt, sent first")
    temperature: Temperature | None = None
    max_output_tokens: OutputTokens | None = None
    description: Description = ""


class AgentUpdate(RequestModel):
    model: ModelName | None = None
    instructions: Instructions | None = None
    temperature: Temperature | None = Field(default=None, description="null removes it")
    max_output_tokens: OutputTokens | None = Field(default=None, description="null removes it")
    description: Description | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> AgentUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        for required in ("model", "instructions", "description"):
            if required in self.model_fields_set and getattr(self, required) is None:
                raise ValueError(f"{required} cannot be null")
        return self


class AgentOut(DocumentModel):
    name: str
    model: str
    instructions: str = ""
    temperature: float | None = None
    max_output_tokens: int | None = None
    description: str = ""
    created_at: UTCDateTime
    updated_at: UTCDateTime


class AgentList(BaseModel):
    items: list[AgentOut]


class ModelChoice(BaseModel):
    id: str = Field(description="What to send as `reply.agent` (kind agent) or `reply.model` (kind model)")
    kind: str = Field(description="agent or model")
    model: str
    description: str = ""


class ModelList(BaseModel):
    items: list[ModelChoice]
    upstream_reachable: bool = Field(description="false: the upstream's own list could not be read")


class RepliesConfig(BaseModel):
    enabled: bool = Field(description="false: no model is configured (MODEL_BASE_URL); asking for a reply is a 503")
    allow_any_model: bool = Field(description="users may pick any model the upstream lists (MODEL_ALLOW_ANY)")
