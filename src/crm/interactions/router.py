from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/interactions", tags=["interactions"])
