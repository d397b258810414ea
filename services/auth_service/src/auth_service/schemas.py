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
from shared.schemas import RequestModel

Username = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=50, pattern=r"^[A-Za-z0-9_.@+-]+$"
    ),
]


class NewUser(RequestModel):
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


class Credentials(RequestModel):
    """A username (or email) and password: seed004's login body, and HTTP Basic's parts."""

    model_config = ConfigDict(extra="ignore")  # as seed004 took it

    username: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=MAX_LENGTH)


class PasswordForm(RequestModel):
    """The OAuth2 password grant's form (RFC 6749 4.3.2); `scope` and the client fields a
    generic OAuth2 client adds are taken and ignored."""

    model_config = ConfigDict(extra="ignore")

    grant_type: str | None = Field(default=None, max_length=50)
    username: str | None = Field(default=None, max_length=254)
    password: str | None = Field(default=None, max_length=MAX_LENGTH)
    scope: str | None = Field(default=None, max_length=1000)
    client_id: str | None = Field(default=None, max_length=100)


class ClientCredentials(RequestModel):
    client_id: str = Field(min_length=1, max_length=100)
    client_secret: str = Field(min_length=1, max_length=256)


class ClientForm(RequestModel):
    """The client-credentials grant's form (the credentials may come as HTTP Basic instead)."""

    grant_type: str | None = Field(default=None, pattern="^client_credentials$")
    client_id: str | None = Field(default=None, max_length=100)
    client_secret: str | None = Field(default=None, max_length=256)


class RefreshRequest(RequestModel):
    model_config = ConfigDict(extra="ignore")  # a client may send back the whole token answer

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
