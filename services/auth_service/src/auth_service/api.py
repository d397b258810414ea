"""The auth HTTP routes: parse, call the service layer once, answer."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel, ValidationError

from auth_service.schemas import (
    ClientCredentials,
    ClientForm,
    Credentials,
    LegacyTokenPair,
    NewUser,
    PasswordForm,
    RefreshRequest,
    ServiceToken,
    TokenPair,
    UserOut,
)
from auth_service.service import AuthService
from shared.failures import Malformed, Unauthenticated
from shared.schemas import COMMON_ERRORS, error_responses
from shared.security import CurrentUser

router = APIRouter(tags=["auth"], responses=error_responses(*COMMON_ERRORS, 401, 403, 404, 409))
internal = APIRouter(tags=["internal"], include_in_schema=False)
_basic = HTTPBasic(auto_error=False, description="Username (or email) and password")

M = TypeVar("M", bound=BaseModel)


class UnsupportedGrant(Malformed):
    code = "unsupported_grant_type"  # RFC 6749's name for it


def _checked(model: type[M], basic: HTTPBasicCredentials, user: str, password: str) -> M:
    """HTTP Basic's two parts through the same checks as the form's fields (a 422 that names
    the part, as the form's would)."""
    try:
        return model.model_validate({user: basic.username, password: basic.password})
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("header", "authorization", *error["loc"])} for error in exc.errors()]
        ) from None


async def _service(request: Request) -> AuthService:
    service: AuthService = request.app.state.auth
    return service


Auth = Annotated[AuthService, Depends(_service)]


@router.post("/auth/create_user", status_code=status.HTTP_201_CREATED, response_model=UserOut)
async def create_user(body: NewUser, auth: Auth) -> UserOut:
    return await auth.register(body)


@router.post("/auth/token", response_model=TokenPair)
async def token(
    auth: Auth,
    form: Annotated[PasswordForm, Form()],
    basic: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
) -> TokenPair:
    """Log in with the OAuth2 password form (`username`, `password`) or HTTP Basic."""
    if form.grant_type not in (None, "password"):
        raise UnsupportedGrant(
            "This endpoint grants `password` only", details={"grant_type": form.grant_type}
        )
    if form.username and form.password:
        return await auth.login(form.username, form.password)
    if basic is not None:
        credentials = _checked(Credentials, basic, "username", "password")
        return await auth.login(credentials.username, credentials.password)
    raise Unauthenticated(
        "Send username and password as a form (OAuth2 password flow) or as HTTP Basic",
        reason="invalid_request",
    )


@internal.post("/internal/token", response_model=ServiceToken)
async def service_token(
    auth: Auth,
    form: Annotated[ClientForm, Form()],
    basic: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
) -> ServiceToken:
    """The client-credentials grant, for the platform's own services: a service token, which
    opens /internal/ routes only. Never routed by the gateway."""
    if form.client_id and form.client_secret:
        return auth.service_token(form.client_id, form.client_secret)
    if basic is not None:
        client = _checked(ClientCredentials, basic, "client_id", "client_secret")
        return auth.service_token(client.client_id, client.client_secret)
    raise Unauthenticated("Send client_id and client_secret", reason="invalid_client")


@router.post("/api/v1/login/", response_model=LegacyTokenPair, tags=["seed004"])
async def legacy_login(body: Credentials, auth: Auth) -> LegacyTokenPair:
    pair = await auth.login(body.username, body.password)
    return LegacyTokenPair(
        **pair.model_dump(), access=pair.access_token, refresh=pair.refresh_token
    )


@router.post("/auth/refresh", response_model=TokenPair)
async def refresh(body: RefreshRequest, auth: Auth) -> TokenPair:
    return await auth.refresh(body.refresh_token)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(body: RefreshRequest, auth: Auth) -> None:
    await auth.logout(body.refresh_token)


@router.get("/auth/me", response_model=UserOut)
async def me(principal: CurrentUser, auth: Auth) -> UserOut:
    return await auth.user(principal.user_id)


@router.get("/auth/.well-known/jwks.json", summary="The public keys that verify access tokens")
async def jwks(request: Request) -> dict[str, Any]:
    keys: dict[str, Any] = request.app.state.jwks
    return keys
