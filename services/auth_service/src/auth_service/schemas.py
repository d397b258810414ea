"""What the auth API takes and answers: the shapes of DESIGN.md."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from auth_service.passwords import MAX_LENGTH, password_problems
from shared.events import Role

Username = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=50, pattern=r"^[A-Za-z0-9_.@+-]+$"
    ),
]


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username = Field(description="1 to 50 letters, digits or `_ . @ + -`")
    email: EmailStr = Field(max_length=254)
    password: str = Field(
        max_length=MAX_LENGTH,
        description="8 to 128 characters, with a letter and a digit, not the username",
    )

    @field_validator("password")
    @classmethod
    def _password_rules(cls, password: str, info: ValidationInfo) -> str:
        problems = password_problems(password, username=info.data.get("username"))
        if problems:
            raise ValueError("password " + "; ".join(problems))
        return password


class LoginJson(BaseModel):
    """The seed004 login body."""

    username: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=MAX_LENGTH)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=512)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 (not a secret)
    expires_in: int


class ServiceToken(BaseModel):
    """The client-credentials grant's answer: no refresh token, a service asks again."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 (not a secret)
    expires_in: int


class LegacyTokenPair(TokenPair):
    """seed004's clients read `access` and `refresh`."""

    access: str
    refresh: str


class UserOut(BaseModel):
    id: uuid.UUID
    username: str
    email: str
    role: Role
    created_at: datetime
