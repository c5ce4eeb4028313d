"""Typed FastAPI dependencies: the app-wide objects routes need, looked up on app.state.

Later layers (auth, request ids) add their own dependencies next to these.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.inference import InferenceService
from app.registry import ModelRegistry
from app.settings import Settings


def get_service(request: Request) -> InferenceService:
    service: InferenceService = request.app.state.service
    return service


def get_registry(request: Request) -> ModelRegistry:
    return get_service(request).registry


def get_settings(request: Request) -> Settings:
    return get_service(request).settings


ServiceDep = Annotated[InferenceService, Depends(get_service)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
