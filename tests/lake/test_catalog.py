from __future__ import annotations

import pytest

from sagelab.errors import Conflict, InvalidInput, NotFound
from sagelab.lake._catalog import Catalog, TableInfo, parse_table_name
from sagelab.lake._schema import Column
from sagelab.store import Store


def _table(**kw: object) -> TableInfo:
    base: dict[str, object] = {
        "database": "sales",
        "name": "orders",
        "location": "s3://warehouse/sales/orders/",
        "classification": "parquet",
        "columns": [Column("id", "bigint"), Column("amount", "double")],
        "partition_keys": [Column("dt", "string")],
    }
    base.update(kw)
    return TableInfo(**base)  # type: ignore[arg-type]


def test_create_get_list_and_versions(store: Store) -> None:
    cat = Catalog(store)
    created = cat.create_table(_table())
    assert created.version_id == 1
    got = cat.get_table("sales", "orders")
    assert [c.name for c in got.all_columns] == ["id", "amount", "dt"]
    assert [t.qualified_name for t in cat.list_tables("sales")] == ["sales.orders"]

    widened = _table(
        columns=[Column("id", "bigint"), Column("amount", "double"), Column("note", "string")]
    )
    updated = cat.update_table(widened, created_by="test")
    assert updated.version_id == 2
    versions = cat.table_versions("sales", "orders")
    assert [v["VersionId"] for v in versions] == ["1", "2"]
    assert versions[1]["Change"]["added"][0]["name"] == "note"
    # Same schema again: no new version.
    assert cat.update_table(widened).version_id == 2


def test_partitions_are_unique_per_values(store: Store) -> None:
    cat = Catalog(store)
    cat.create_table(_table())
    loc = "s3://warehouse/sales/orders/dt=2024-01-01/"
    assert cat.add_partitions("sales", "orders", [(["2024-01-01"], loc, {"recordCount": 3})]) == 1
    assert cat.add_partitions("sales", "orders", [(["2024-01-01"], loc, {"recordCount": 5})]) == 0
    parts = cat.get_partitions("sales", "orders")
    assert [(p.values, p.parameters["recordCount"]) for p in parts] == [(["2024-01-01"], 5)]
    with pytest.raises(InvalidInput, match="needs 1 values"):
        cat.add_partitions("sales", "orders", [(["a", "b"], loc, {})])


def test_errors_name_the_thing(store: Store) -> None:
    cat = Catalog(store)
    cat.create_table(_table())
    with pytest.raises(Conflict):
        cat.create_table(_table())
    with pytest.raises(NotFound, match="Did you mean 'orders'"):
        cat.get_table("sales", "order")
    with pytest.raises(NotFound, match="database 'sale' is not in the catalog"):
        cat.list_tables("sale")
    with pytest.raises(InvalidInput, match="twice"):
        cat.create_table(_table(name="dup", columns=[Column("a", "int"), Column("A", "int")]))


@pytest.mark.parametrize(
    "bad", ["../etc", "Sales.orders", "a.b.c", "sales", "sales./x", "s.t-1", ""]
)
def test_bad_table_names(bad: str) -> None:
    with pytest.raises(InvalidInput):
        parse_table_name(bad)
