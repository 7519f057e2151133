"""The base of every repository: all SQL of a domain lives in its repository class.

A repository is built from the caller's session and never commits; it flushes when asked so
generated ids and constraint violations surface inside the unit of work that caused them.
Services compose repository calls and never build statements themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from backend.db import Base

ModelT = TypeVar("ModelT", bound=Base)

MAX_PAGE_SIZE = 1000


class RepositoryBase(Generic[ModelT]):
    """Typed get/list/create helpers over one model.

    Subclasses set `model` and add the domain's queries as methods built on
    `get_base_statement()`, so a default filter (e.g. hiding soft-deleted rows) applies to all.
    """

    model: ClassVar[type[Any]]

    def __init__(self, session: Session) -> None:
        self.session = session

    def get_base_statement(self) -> Select[ModelT]:
        return select(self.model)

    def get(self, id_: Any) -> ModelT | None:
        """The row with this primary key, or None."""
        instance: ModelT | None = self.session.get(self.model, id_)
        return instance

    def get_one_or_none(self, statement: Select[ModelT]) -> ModelT | None:
        return self.session.execute(statement).scalars().unique().one_or_none()

    def get_all(self, statement: Select[ModelT]) -> Sequence[ModelT]:
        return self.session.execute(statement).scalars().unique().all()

    def list(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        order_by: Sequence[ColumnElement[Any]] = (),
    ) -> Sequence[ModelT]:
        """One page of rows, in primary-key order unless `order_by` says otherwise."""
        if not 0 < limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
        if offset < 0:
            raise ValueError(f"offset must not be negative, got {offset}")
        ordering = list(order_by) or list(self.model.__table__.primary_key.columns)
        statement = self.get_base_statement().order_by(*ordering).limit(limit).offset(offset)
        return self.get_all(statement)

    def count(self, statement: Select[ModelT] | None = None) -> int:
        base = statement if statement is not None else self.get_base_statement()
        total = self.session.execute(
            select(func.count()).select_from(base.order_by(None).subquery())
        ).scalar_one()
        return int(total)

    def create(self, instance: ModelT, *, flush: bool = True) -> ModelT:
        """Add a new row; flush by default so its id and constraint errors show up now."""
        self.session.add(instance)
        if flush:
            self.session.flush()
        return instance
