"""Typed FastAPI dependencies: the app-wide objects routes need, looked up on app.state.

`async def` on purpose: FastAPI runs plain `def` dependencies in its thread pool, one thread hop
per request for a dictionary lookup.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.inference import InferenceService
from app.registry import ModelRegistry
from app.settings import Settings


async def get_service(request: Request) -> InferenceService:
    service: InferenceService = request.app.state.service
    return service


async def get_registry(request: Request) -> ModelRegistry:
    return (await get_service(request)).registry


async def get_settings(request: Request) -> Settings:
    return (await get_service(request)).settings


ServiceDep = Annotated[InferenceService, Depends(get_service)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
