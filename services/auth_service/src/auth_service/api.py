"""The auth HTTP routes: parse, call the service layer once, answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from auth_service.schemas import (
    LegacyTokenPair,
    LoginJson,
    NewUser,
    RefreshRequest,
    ServiceToken,
    TokenPair,
    UserOut,
)
from auth_service.service import AuthService
from shared.errors import Unauthorized
from shared.security import CurrentPrincipal

router = APIRouter(tags=["auth"])
_basic = HTTPBasic(auto_error=False, description="Username (or email) and password")


async def _service(request: Request) -> AuthService:
    service: AuthService = request.app.state.auth
    return service


Auth = Annotated[AuthService, Depends(_service)]


@router.post("/auth/create_user", status_code=status.HTTP_201_CREATED, response_model=UserOut)
async def create_user(body: NewUser, auth: Auth) -> UserOut:
    return await auth.register(body)


@router.post("/auth/token", response_model=TokenPair | ServiceToken)
async def token(
    auth: Auth,
    basic: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
    username: Annotated[str | None, Form(max_length=254)] = None,
    password: Annotated[str | None, Form(max_length=128)] = None,
    grant_type: Annotated[str | None, Form(pattern="^(password|client_credentials)$")] = None,
    client_id: Annotated[str | None, Form(max_length=100)] = None,
    client_secret: Annotated[str | None, Form(max_length=256)] = None,
) -> TokenPair | ServiceToken:
    """Log in with the OAuth2 password form (`username`, `password`) or HTTP Basic.

    The platform's services use `grant_type=client_credentials` (client id and secret in
    the form or as HTTP Basic) for a service token without a refresh token."""
    if grant_type == "client_credentials":
        if client_id and client_secret:
            return auth.service_token(client_id, client_secret)
        if basic is not None:
            return auth.service_token(basic.username, basic.password)
        raise Unauthorized("Send client_id and client_secret", error="invalid_client")
    if username and password:
        return await auth.login(username, password)
    if basic is not None:
        return await auth.login(basic.username, basic.password)
    raise Unauthorized(
        "Send username and password as a form (OAuth2 password flow) or as HTTP Basic",
        error="invalid_request",
    )


@router.post("/api/v1/login/", response_model=LegacyTokenPair, tags=["seed004"])
async def legacy_login(body: LoginJson, auth: Auth) -> LegacyTokenPair:
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
async def me(principal: CurrentPrincipal, auth: Auth) -> UserOut:
    return await auth.user(principal.user_id)


@router.get("/auth/.well-known/jwks.json", summary="The public keys that verify access tokens")
async def jwks(request: Request) -> dict[str, Any]:
    keys: dict[str, Any] = request.app.state.jwks
    return keys
