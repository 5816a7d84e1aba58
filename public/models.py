"""Server-side page view counts: no cookies, no third-party scripts."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.columns import BigId
from core.db import Base


class PageView(Base):
    """Views of one page on one day from one UTM source and campaign."""

    __tablename__ = "page_views"
    __table_args__ = (UniqueConstraint("day", "page", "utm_source", "utm_campaign"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    page: Mapped[str] = mapped_column(String(200))
    utm_source: Mapped[str] = mapped_column(String(100), default="")
    utm_campaign: Mapped[str] = mapped_column(String(100), default="")
    views: Mapped[int] = mapped_column(Integer, default=0)
