"""odata/metadata.py: streaming CSDL (v4 and v3) → entity types, and their JSON Schema."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator

import pytest

from tap_acumatica.errors import AnswerShapeError
from tap_acumatica.odata.metadata import MetadataParser, json_schema, parse_metadata, short_name
from tap_acumatica.odata.model import EntityType, Property
from tests.sandbox import odata
from tests.sandbox.dac_metadata import metadata_xml as dac_metadata_xml
from tests.sandbox.odata_query import Column, csdl, csdl_v3, entity_type

V4 = 'xmlns="http://docs.oasis-open.org/odata/ns/edm"'
V3 = 'xmlns="http://schemas.microsoft.com/ado/2009/11/edm"'


def pieces(text: str, size: int) -> Iterator[bytes]:
    data = text.encode()
    return (data[i : i + size] for i in range(0, len(data), size))


def everything(name: str) -> bool:
    del name
    return True


def test_sandbox_dac_metadata_fed_in_tiny_pieces() -> None:
    data = dac_metadata_xml(frozenset({"ARInvoice"}), False)
    whole = parse_metadata([data], everything)
    cut = parse_metadata((data[i : i + 3] for i in range(0, len(data), 3)), everything)
    assert cut == whole  # cut anywhere, even inside a name or a multi-byte character
    line = whole["PX_Objects_SO_SOLine"]
    assert line.keys == ("OrderType", "OrderNbr", "LineNbr")
    assert line.aliases[0] == "SOLine"
    assert line.navigations == ("SOOrderByOrderNbr",)
    assert line.deleted_records  # bound GetDeletedRecords(Collection(Default.PX_Objects_…))
    assert line.property("NoteID") == Property("NoteID", "Edm.Guid", nullable=True)
    assert line.property("OrderNbr") == Property("OrderNbr", "Edm.String", nullable=False)
    stamp = line.property("LastModifiedDateTime")
    assert stamp is not None
    assert stamp.edm == "Edm.DateTimeOffset"
    assert not whole["PX_Objects_AR_ARInvoice"].deleted_records  # not on SM207010 here
    assert all(e.name == name for name, e in whole.items())


def test_only_the_wanted_sets_are_built() -> None:
    data = dac_metadata_xml(frozenset(), False)
    got = parse_metadata([data], lambda name: name.endswith("_SOOrder"))
    assert list(got) == ["PX_Objects_SO_SOOrder"]


def test_sandbox_gi_metadata_v3_and_v4() -> None:
    v3 = parse_metadata([odata.metadata_xml(v3=True).encode()], everything)
    v4 = parse_metadata([odata.metadata_xml().encode()], everything)
    assert set(v3) == set(v4) >= {"SalesOrders", "ModifiedStockItems"}
    assert v3["SalesOrders"].keys == v4["SalesOrders"].keys == ("OrderType", "OrderNbr")
    date3, date4 = v3["SalesOrders"].property("Date"), v4["SalesOrders"].property("Date")
    assert date3 is not None
    assert date3.edm == "Edm.DateTime"  # v3: no offset (api.md §8)
    assert date4 is not None
    assert date4.edm == "Edm.DateTimeOffset"
    assert json_schema(v3["SalesOrders"])["properties"]["Date"] == {
        "type": ["string", "null"],
        "format": "date-time",
    }
    assert not v3["SalesOrders"].deleted_records


#: The real DAC document's shape (api.md §8): a Schema per namespace, a derived DAC declared
#: before its base, three sets per DAC in a container of another Schema, annotations galore.
REAL_LIKE = csdl(
    f'<Schema Namespace="PX.Objects.AR" Alias="AR" {V4}>'
    '<EntityType Name="Customer" BaseType="CR.BAccount">'
    '<Property Name="CustomerClassID" Type="Edm.String"/>'
    '<Property Name="CreditLimit" Type="Edm.Decimal" Scale="4"/>'
    '<Annotation Term="Org.OData.Core.V1.Description" String="Customer"/>'
    "</EntityType></Schema>",
    f'<Schema Namespace="PX.Objects.CR" Alias="CR" {V4}>'
    '<EntityType Name="BAccount"><Key><PropertyRef Name="BAccountID"/></Key>'
    '<Property Name="BAccountID" Type="Edm.Int32" Nullable="false">'
    '<Annotation Term="Org.OData.Core.V1.Description" String="Account ID"/></Property>'
    '<Property Name="AcctCD" Type="Edm.String" MaxLength="30"/>'
    '<Property Name="NoteID" Type="Edm.Guid"/>'
    '<Property Name="LastModifiedDateTime" Type="Edm.DateTimeOffset"/>'
    '<NavigationProperty Name="ContactByDefContactID" Type="CR.Contact">'
    '<ReferentialConstraint Property="DefContactID" ReferencedProperty="ContactID"/>'
    "</NavigationProperty><Oddity><Deeper/></Oddity></EntityType>"
    '<ComplexType Name="Unused"><Property Name="X" Type="Edm.String"/></ComplexType>'
    "</Schema>",
    f'<Schema Namespace="PX" {V4}><Function Name="GetDeletedRecords" IsBound="true">'
    '<Parameter Name="bindingParameter" Type="Collection(PX.Objects.AR.Customer)"/>'
    '<ReturnType Type="Collection(PX.Api.ODataV4.DeletedRecord)"/></Function></Schema>',
    f'<Schema Namespace="Default" {V4}><EntityContainer Name="Container">'
    '<EntitySet Name="PX_Objects_AR_Customer" EntityType="PX.Objects.AR.Customer">'
    '<Annotation Term="Org.OData.Capabilities.V1.FilterRestrictions"><Record>'
    '<PropertyValue Property="NonFilterableProperties"><Collection>'
    "<PropertyPath>NoteText</PropertyPath></Collection></PropertyValue></Record>"
    "</Annotation></EntitySet>"
    '<EntitySet Name="Customer" EntityType="AR.Customer"/>'
    '<EntitySet Name="BusinessAccount" EntityType="PX.Objects.CR.BAccount"/>'
    '<EntitySet Name="BAccount" EntityType="PX.Objects.CR.BAccount"/>'
    '<EntitySet Name="Ghost" EntityType="PX.Objects.XX.Missing"/>'
    '<EntitySet Name="NoType"/><Singleton Name="Setup" Type="PX.Objects.CR.BAccount"/>'
    "</EntityContainer></Schema>",
)


def test_real_like_document_bases_aliases_and_oddities() -> None:
    got = parse_metadata(pieces(REAL_LIKE, 7), everything)
    assert set(got) == {"PX_Objects_AR_Customer", "Customer", "BAccount", "BusinessAccount"}
    customer = got["PX_Objects_AR_Customer"]
    assert customer.keys == ("BAccountID",)  # inherited from the base declared after it
    assert [p.name for p in customer.properties] == [
        "BAccountID",
        "AcctCD",
        "NoteID",
        "LastModifiedDateTime",
        "CustomerClassID",
        "CreditLimit",
    ]
    assert customer.navigations == ("ContactByDefContactID",)
    assert customer.aliases == ("Customer",)  # the other set of the same type
    assert customer.deleted_records
    assert got["Customer"].aliases == ("PX_Objects_AR_Customer",)
    assert got["BAccount"].aliases == ("BusinessAccount",)
    assert got["BusinessAccount"].aliases == ("BAccount",)  # a display name: the class first
    assert not got["BAccount"].deleted_records  # bound to the derived type only


def test_gi_parameters_v4_function_and_v3_function_import() -> None:
    columns = [Column("Status", "Status", "String"), Column("Total", "Total", "Decimal")]
    gi = entity_type("OpenOrders", ["Status"], columns)
    v4 = csdl(
        f'<Schema Namespace="Default" {V4}>{gi}'
        '<Function Name="OpenOrders_WithParameters"><Parameter Name="Status" Type="Edm.String"/>'
        '<Parameter Name="From" Type="Edm.DateTimeOffset" Nullable="false"/>'
        '<ReturnType Type="Collection(Default.OpenOrders)"/></Function>'
        '<EntityContainer Name="Default"><EntitySet Name="OpenOrders" '
        'EntityType="Default.OpenOrders"/><FunctionImport Name="OpenOrders_WithParameters" '
        'Function="Default.OpenOrders_WithParameters" EntitySet="OpenOrders"/>'
        "</EntityContainer></Schema>"
    )
    assert parse_metadata([v4.encode()], everything)["OpenOrders"].parameters == (
        Property("Status", "Edm.String"),
        Property("From", "Edm.DateTimeOffset", nullable=False),
    )
    v3 = csdl_v3(
        f'<Schema Namespace="Default" {V3}>{gi}<EntityContainer Name="Default" '
        'm:IsDefaultEntityContainer="true"><EntitySet Name="OpenOrders" '
        'EntityType="Default.OpenOrders"/><FunctionImport Name="Renamed" '
        'ReturnType="Collection(Default.OpenOrders)" m:HttpMethod="GET">'
        '<Parameter Name="Status" Type="Edm.String" Mode="In"/></FunctionImport>'
        "</EntityContainer></Schema>"
    )
    got = parse_metadata([v3.encode()], everything)["OpenOrders"]
    assert got.parameters == (Property("Status", "Edm.String"),)  # found by its return type


def big_document(types: int, columns: int) -> str:
    """A DAC-like document (``csdl`` of the sandbox): many wide types, annotated properties."""
    note = '<Annotation Term="Org.OData.Core.V1.Description" String="A display name"/>'
    edms = ("Edm.String", "Edm.Decimal", "Edm.DateTimeOffset")
    props = "".join(
        f'<Property Name="Field{c:03d}Value" Type="{edms[c % 3]}">{note}</Property>'
        for c in range(columns)
    )
    names = [f"PX_Objects_ZZ_Table{t:05d}" for t in range(types)]
    body = "".join(
        f'<EntityType Name="{n}"><Key><PropertyRef Name="Field000Value"/></Key>{props}</EntityType>'
        for n in names
    )
    sets = "".join(f'<EntitySet Name="{n}" EntityType="Default.{n}"/>' for n in names)
    return csdl(
        f'<Schema Namespace="Default" {V4}>{body}<EntityContainer Name="Default">{sets}'
        "</EntityContainer></Schema>"
    )


@pytest.mark.parametrize(
    ("make", "wanted", "share"),
    [
        (lambda: big_document(types=2000, columns=60).encode(), "PX_Objects_ZZ_Table01234", 10),
        (lambda: dac_metadata_xml(frozenset(), True), "PX_Objects_SO_SOLine", 5),  # ~20 MB
    ],
)
def test_big_document_is_parsed_in_bounded_memory(
    make: Callable[[], bytes], wanted: str, share: int
) -> None:
    data = make()
    assert len(data) > 15_000_000
    names = {wanted, "PX_Objects_ZZ_Table00007"}
    tracemalloc.start()
    try:
        parser = MetadataParser(names.__contains__)
        for i in range(0, len(data), 64 * 1024):
            parser.feed(data[i : i + 64 * 1024])
        got = parser.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert wanted in got
    assert got[wanted].keys
    assert len(got[wanted].properties) > len(got[wanted].keys)
    assert peak < len(data) / share, f"peak {peak} bytes for a {len(data)}-byte document"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"", "the body is empty"),
        (b" \r\n", "the body is empty"),
        (b'{"value": []}', "not well-formed XML"),
        (b"<html><body>Sign in</body></html>", "root element is <html>"),
        (b"<Edmx><b></Edmx>", "not well-formed XML"),
        (dac_metadata_xml(frozenset(), False)[:500], "not well-formed XML"),  # cut short
        (
            b'<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">'
            b"<edmx:DataServices/></edmx:Edmx>",
            "declares no <Schema>",
        ),
    ],
)
def test_bad_bodies_are_one_line(body: bytes, says: str) -> None:
    source = "GET /t/Company/api/odata/dac/$metadata"
    with pytest.raises(AnswerShapeError) as caught:
        parse_metadata([body[:9], body[9:]], everything, source=source)
    text = str(caught.value)
    assert says in text
    assert "\n" not in text
    assert text.startswith("GET /t/Company/api/odata/dac/$metadata: the answer is not")


def test_json_schema_maps_every_edm_type() -> None:
    edms = {
        "Edm.String": {"type": ["string", "null"]},
        "Edm.Decimal": {"type": ["number", "null"]},
        "Edm.Double": {"type": ["number", "null"]},
        "Edm.Single": {"type": ["number", "null"]},
        "Edm.Int16": {"type": ["integer", "null"]},
        "Edm.Int64": {"type": ["integer", "null"]},
        "Edm.Byte": {"type": ["integer", "null"]},
        "Edm.SByte": {"type": ["integer", "null"]},
        "Edm.Boolean": {"type": ["boolean", "null"]},
        "Edm.DateTimeOffset": {"type": ["string", "null"], "format": "date-time"},
        "Edm.DateTime": {"type": ["string", "null"], "format": "date-time"},
        "Edm.Date": {"type": ["string", "null"], "format": "date"},
        "Edm.TimeOfDay": {"type": ["string", "null"]},
        "Edm.Guid": {"type": ["string", "null"]},
        "Collection(Edm.Int32)": {
            "type": ["array", "null"],
            "items": {"type": ["integer", "null"]},
        },
    }
    props = tuple(Property(f"c{i}", edm) for i, edm in enumerate(edms))
    etype = EntityType("T", ("Id",), (Property("Id", "Edm.Int32", nullable=False), *props))
    schema = json_schema(etype)
    assert schema["required"] == ["Id"]
    assert schema["properties"]["Id"] == {"type": "integer"}  # a key: never null
    for i, expected in enumerate(edms.values()):
        assert schema["properties"][f"c{i}"] == expected
    odd = json_schema(EntityType("T", (), (Property("g", "Edm.GeographyPoint"),)))
    assert odd["properties"]["g"]["type"] == ["string", "null"]
    assert "Edm.GeographyPoint" in odd["properties"]["g"]["description"]
    assert "required" not in odd
    loose = json_schema(etype, keys_required=False)
    assert "required" not in loose
    assert loose["properties"]["Id"]["type"] == ["integer", "null"]


def test_short_name() -> None:
    assert short_name("PX_Objects_SO_SOLine") == "SOLine"
    assert short_name("PX_Objects_CS_DAC_OrganizationBAccount") == "OrganizationBAccount"
    assert short_name("SalesOrders") == "SalesOrders"
    assert short_name("My_Table") == "My_Table"


def test_odd_names_and_unwanted_sets_do_not_break_the_parse() -> None:
    text = csdl(
        f'<Schema Namespace="NS" {V4}><EntityType Name="T"><Key><PropertyRef Name="Id"/></Key>'
        '<Property Name="Id" Type="Edm.Int32" Nullable="false"/>'
        '<Property Name="Odd&#9;Name&#10;" Type="Edm.String"/></EntityType>'
        '<EntityContainer Name="C"><EntitySet Name="A" EntityType="NS.T"/>'
        '<EntitySet Name="B" EntityType="NS.T"/></EntityContainer></Schema>'
    )
    got = parse_metadata([text.encode()], lambda name: name == "A")
    assert list(got) == ["A"]
    assert [p.name for p in got["A"].properties] == ["Id", "Odd Name "]
    assert got["A"].aliases == ("B",)  # the other set; the type's name is no set
