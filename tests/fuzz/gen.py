"""Operations to send: hypothesis-graphql builds them from the served SDL; this module only
chooses the argument values (boundary integers, huge strings, real and unknown ids, odd dates and
decimals) and adds the request-level shapes a generator of single documents does not make (many
aliases, deep nesting, arguments as variables)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random

import graphql
import hypothesis_graphql as hg
from hypothesis import strategies as st

# Dates near today hit the windows that matter (this month, today's business day, validity).
# Fixed per run, so a seed replays the same values on the same day.
TODAY = dt.date.today()
INT_MIN, INT_MAX = -(2**31), 2**31 - 1

# Integers where rules change: zero, one, the 32-bit edges, and the documented limits
# (quantity 100, first 100, transfer 1,000, amount 1,000,000).
BOUNDARY_INTS = [0, 1, -1, 2, 6, 7, 10, 11, 20, 50, 99, 100, 101, 999, 1000, 1001, 1_000_000,
                 1_000_001, INT_MAX, INT_MIN, INT_MAX - 1, INT_MIN + 1, 2**30, -(2**30)]
# Outside GraphQL's Int: invalid as literals and as variables.
OUT_OF_RANGE_INTS = [INT_MAX + 1, INT_MIN - 1, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1]
ODD_IDS = ["0", "-1", "2147483647", "2147483648", "9223372036854775807", "9223372036854775808",
           "99999999999999999999", "1.5", "1e3", " 1", "0x1", "", "abc", "1;DROP TABLE member"]
DATES = ["2026-12-01", "2026-11-30", "2026-02-28", "2024-02-29", "2026-01-01", "1970-01-01",
         "0001-01-01", "9999-12-31", "2026-02-30", "2026-13-01", "2026-1-1", "20261201", "", "today"]
DATETIMES = ["2026-12-01T00:00:00Z", "2026-11-30T23:30:00+08:00", "2027-12-01T00:00:00Z",
             "2020-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z",
             "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-23:59", "2026-12-01T00:00:00",
             "2026-12-01", "2026-12-01T25:00:00Z", "+275760-09-13T00:00:00Z", "now", ""]
DECIMALS = ["0", "0.00", "0.01", "0.1", "0.3", "0.7", "1", "1.5", "2", "10.00", "99.99", "100.00",
            "300", "999999.99", "1000000", "1000000.01", "-1", "-0.01", "0.001", "1.005",
            "79228162514264337593543950335", "79228162514264337593543950336",
            "-79228162514264337593543950336", "0.0000000000000000000000000001",
            "0.00000000000000000000000000001", "1e10", "1e28", "1e29", "1e308", "1e-30",
            "9" * 40, "1." + "9" * 40, "NaN", "Infinity", "abc", ""]
# Characters that have broken servers: NUL, surrogate-free astral, RTL, combining, quotes.
ODD_CHARS = ["\x00", "\u0000x", "\ufeff", "\u202e", "e\u0301", "😀", "中", "'", '"', "\\", "%", "_",
             "\n", "\r\n", "\t", " "]


# String arguments that are enumerations in all but type (kinds, rarities, metrics, events):
# a random string almost never names one, and then the checks behind it are never reached.
# Keyed by (input type or field, name), then by name alone.
EVENTS = ["browse_item", "share", "review", "ugc_post"]
HINTS: dict[tuple[str, str] | str, list[str]] = {
    ("MallItemInput", "kind"): ["PHYSICAL", "COUPON", "PRIVILEGE"],
    ("BlindBoxPrizeInput", "kind"): ["POINTS", "COUPON", "ITEM", "HIDDEN_TASK", "TITLE"],
    ("TaskInput", "kind"): ["DAILY", "WEEKLY", "ONCE", "GROWTH", "CHALLENGE", "HIDDEN"],
    ("reportEvent", "kind"): EVENTS,
    "rarity": ["COMMON", "RARE", "EPIC", "LEGENDARY"],
    "metric": ["checkin.streak", "checkin.total", "invite.count", "purchase.count",
               "purchase.amount", "mall.redemptions", "blindbox.draws", "points.earned",
               "tasks.claimed", "donation.points", "achievements.unlocked"],
    "event": ["checkin", "draw", "invite", "purchase", "redeem", *EVENTS],
    "payload": ["5", "5.00", "1", "2", "fuzz_hidden", "fuzz_title"],
    "category": ["fuzz", "supplies", "milk_powder", "coupon", "gear", "default"],
    "month": [TODAY.strftime("%Y-%m"), "2026-02"],
}


def with_hints(doc: graphql.DocumentNode, schema: graphql.GraphQLSchema,
               rng: random.Random) -> graphql.DocumentNode:
    """Most string values of hinted arguments and input fields replaced by a valid name."""
    type_info = graphql.TypeInfo(schema)

    def replace(owner: str | None, node):
        names = HINTS.get((owner or "", node.name.value)) or HINTS.get(node.name.value)
        if names and isinstance(node.value, graphql.StringValueNode) and rng.random() < 0.7:
            return dataclasses.replace(node, value=string_node(rng.choice(names)))
        return None

    class Hint(graphql.Visitor):
        def enter_argument(self, node, *_):
            field = type_info.get_field_def()
            return replace(field.ast_node.name.value if field and field.ast_node else None, node)

        def enter_object_field(self, node, *_):
            parent = type_info.get_parent_input_type()
            return replace(graphql.get_named_type(parent).name if parent else None, node)

    return graphql.visit(doc, graphql.TypeInfoVisitor(type_info, Hint()))


def weighted(*pairs: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """One of the strategies, chosen with the given weights; shrinks toward the first."""
    expanded = [strategy for weight, strategy in pairs for _ in range(weight)]
    return st.sampled_from(expanded).flatmap(lambda s: s)


def int_node(value: int) -> graphql.IntValueNode:
    return graphql.IntValueNode(value=str(value))


def string_node(value: str) -> graphql.StringValueNode:
    return graphql.StringValueNode(value=value)


def huge_strings() -> st.SearchStrategy[str]:
    # Up to and past the 64 KiB body limit, in 1-, 3- and 4-byte UTF-8 characters.
    return st.builds(lambda ch, n: ch * n, st.sampled_from(["a", "中", "😀", "\x00"]),
                     st.sampled_from([256, 1025, 4097, 16_000, 21_000, 60_000, 70_000]))


def scalars(known: dict[str, list[str]]) -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    """Value strategies for every scalar of both schemas, keyed by scalar name."""
    ids = known.get("ids") or ["1"]
    strings = known.get("strings") or ["alice"]
    alphabet = st.characters(codec="utf-8", max_codepoint=0xFFFF, exclude_categories=["Cs"])
    # Mostly values a client would send, so operations get past validation into the resolvers;
    # the rest probe the edges. Negative mode (see operations) sends the outright invalid ones.
    ints = weighted(
        (10, st.integers(0, 100)),
        (5, st.sampled_from(BOUNDARY_INTS)),
        (4, st.integers(INT_MIN, INT_MAX)),
        (1, st.sampled_from(OUT_OF_RANGE_INTS)),
    ).map(int_node)
    text = weighted(
        (16, st.sampled_from(strings)),
        (8, st.text(alphabet, max_size=40)),
        (4, st.sampled_from(ODD_CHARS)),
        (3, st.builds(lambda a, b: a + b, st.sampled_from(strings), st.sampled_from(ODD_CHARS))),
        (1, huge_strings()),
    ).map(string_node)
    real_or_odd_ids = weighted((10, st.sampled_from(ids)), (2, st.sampled_from(ODD_IDS)),
                               (1, st.integers(1, 10_000).map(str)))
    id_nodes = weighted(
        (4, real_or_odd_ids.map(string_node)),
        (1, st.sampled_from([i for i in ids if i.isdigit()] or ["1"]).map(lambda i: int_node(int(i)))),
        (1, st.sampled_from([0, -1, INT_MAX, 2**40]).map(int_node)),
    )

    def number_or_string(values: list[str]) -> st.SearchStrategy[graphql.ValueNode]:
        def node(value: str, as_number: bool) -> graphql.ValueNode:
            if as_number:
                try:
                    float(value)
                    if value not in ("NaN", "Infinity"):
                        return (graphql.IntValueNode(value=value) if value.lstrip("-").isdigit()
                                else graphql.FloatValueNode(value=value if "." in value or "e" in value
                                                            else value + ".0"))
                except ValueError:
                    pass
            return string_node(value)
        return st.builds(node, st.sampled_from(values), st.booleans())

    decimals = weighted(
        (6, st.decimals(min_value=0, max_value=2000, places=2).map(lambda d: string_node(str(d)))),
        (4, number_or_string(DECIMALS)),
        (2, number_or_string(DECIMALS[20:26])),  # near and past Decimal's range
        (1, st.text(alphabet, max_size=12).map(string_node)),
    )
    near = st.integers(-400, 400).map(lambda days: TODAY + dt.timedelta(days=days))
    dates = weighted((8, near.map(str)), (3, st.sampled_from(DATES)), (2, st.dates().map(str)),
                     (1, st.text(alphabet, max_size=12))).map(string_node)
    datetimes = weighted(
        (8, st.builds(lambda d, s: f"{d}T{s // 3600:02}:{s // 60 % 60:02}:{s % 60:02}Z",
                      near, st.integers(0, 86399))),
        (3, st.sampled_from(DATETIMES)),
        (2, st.datetimes().map(lambda d: d.isoformat() + "Z")),
        (1, st.text(alphabet, max_size=12))).map(string_node)
    json_values = st.sampled_from(['{}', '[]', 'null', '"x"']).map(string_node)
    return {"Int": ints, "String": text, "ID": id_nodes, "Decimal": decimals, "Date": dates,
            "DateTime": datetimes, "JSON": json_values}


@dataclasses.dataclass(frozen=True)
class Operation:
    """One request: what is posted, and the headers that vary."""

    query: str
    variables: str | None  # JSON text, kept verbatim so huge numbers reach the server as sent
    accept: str
    device: str | None
    shape: str  # how it was made, for the report: mode, aliases, nesting, variables

    def body(self) -> str:
        body = '{"query": ' + json.dumps(self.query, ensure_ascii=False)
        if self.variables is not None:
            body += ', "variables": ' + self.variables
        return body + "}"

    def __repr__(self) -> str:
        lines = [f"# {self.shape}", self.query if len(self.query) <= 4000
                 else self.query[:4000] + f"... ({len(self.query)} chars)"]
        if self.variables is not None:
            v = self.variables
            lines.append("variables: " + (v if len(v) <= 2000 else v[:2000] + f"... ({len(v)} chars)"))
        return "\n".join(lines)


def value_json(node: graphql.ValueNode) -> str:
    """A literal as JSON text; numbers verbatim (GraphQL's number syntax is JSON's)."""
    if isinstance(node, (graphql.IntValueNode, graphql.FloatValueNode)):
        return node.value
    if isinstance(node, graphql.StringValueNode):
        return json.dumps(node.value, ensure_ascii=False)
    if isinstance(node, graphql.BooleanValueNode):
        return "true" if node.value else "false"
    if isinstance(node, graphql.NullValueNode):
        return "null"
    if isinstance(node, graphql.EnumValueNode):
        return json.dumps(node.value)
    if isinstance(node, graphql.ListValueNode):
        return "[" + ", ".join(value_json(v) for v in node.values) + "]"
    if isinstance(node, graphql.ObjectValueNode):
        return "{" + ", ".join(f"{json.dumps(f.name.value)}: {value_json(f.value)}"
                               for f in node.fields) + "}"
    raise TypeError(f"no JSON for {type(node).__name__}")


def to_variables(doc: graphql.DocumentNode, schema: graphql.GraphQLSchema
                 ) -> tuple[graphql.DocumentNode, str]:
    """Moves every argument the schema knows into a variable of the argument's type, so values
    take the server's variable-coercion path instead of the literal one."""
    type_info = graphql.TypeInfo(schema)
    definitions: list[graphql.VariableDefinitionNode] = []
    values: list[str] = []

    class Lift(graphql.Visitor):
        def enter_argument(self, node: graphql.ArgumentNode, *_):
            argument = type_info.get_argument()
            if argument is None or isinstance(node.value, graphql.VariableNode):
                return None
            name = f"v{len(definitions)}"
            variable = graphql.VariableNode(name=graphql.NameNode(value=name))
            definitions.append(graphql.VariableDefinitionNode(
                variable=variable, type=graphql.parse_type(str(argument.type)), directives=()))
            values.append(f"{json.dumps(name)}: {value_json(node.value)}")
            return dataclasses.replace(node, value=variable)

    lifted = graphql.visit(doc, graphql.TypeInfoVisitor(type_info, Lift()))
    operation = lifted.definitions[0]
    operation = dataclasses.replace(operation, variable_definitions=tuple(definitions))
    lifted = dataclasses.replace(lifted, definitions=(operation, *lifted.definitions[1:]))
    return lifted, "{" + ", ".join(values) + "}"


def with_aliases(doc: graphql.DocumentNode, count: int) -> graphql.DocumentNode:
    """The first root field repeated `count` times under aliases: the cost of a document grows
    with its aliases, which a complexity limit must see."""
    operation = doc.definitions[0]
    selections = operation.selection_set.selections
    first = selections[0]
    if not isinstance(first, graphql.FieldNode):
        return doc
    copies = tuple(dataclasses.replace(first, alias=graphql.NameNode(value=f"a{i}"))
                   for i in range(count))
    selection_set = dataclasses.replace(operation.selection_set, selections=copies + tuple(selections))
    return dataclasses.replace(doc, definitions=(
        dataclasses.replace(operation, selection_set=selection_set),))


def with_nesting(query: str, depth: int) -> str:
    """The root selections wrapped in `depth` nested inline fragments, on one line (printed
    indented, a deep document would grow with the square of its depth). The document is one
    operation without default values, so its first `{` opens the root selection set and its
    last `}` closes it."""
    start, end = query.index("{"), query.rindex("}")
    return (query[:start + 1] + " ... {" * depth + query[start + 1:end] + "}" * depth
            + query[end:])


def operations(schema: graphql.GraphQLSchema, known: dict[str, list[str]]
               ) -> st.SearchStrategy[Operation]:
    custom = scalars(known)
    devices = st.sampled_from([None, "fuzz-device-1", "fuzz-device-2", "", "d" * 200])
    accepts = st.sampled_from(["application/json", "application/graphql-response+json",
                               "application/graphql-response+json, application/json;q=0.9"])
    documents = {
        mode: hg.from_schema(schema, custom_scalars=custom, print_ast=lambda d: d, mode=mode)
        for mode in (hg.Mode.POSITIVE, hg.Mode.NEGATIVE)
    }
    # One root field at a time as well: a mutation document whose first field fails answers
    # no data at all (root fields are non-null), so single fields reach the success paths.
    roots = [*schema.query_type.fields, *schema.mutation_type.fields]
    single = st.sampled_from(roots).flatmap(lambda field: hg.from_schema(
        schema, fields=[field], custom_scalars=custom, print_ast=lambda d: d))

    @st.composite
    def build(draw: st.DrawFn) -> Operation:
        mode, doc = draw(weighted(
            (3, st.tuples(st.just("positive, one root field"), single)),
            (3, st.tuples(st.just("positive"), documents[hg.Mode.POSITIVE])),
            (1, st.tuples(st.just("negative"), documents[hg.Mode.NEGATIVE]))))
        shape = [mode]
        # Hints draw from a seeded generator, so a Hypothesis seed still replays the document.
        doc = with_hints(doc, schema, random.Random(draw(st.integers(0, 2**32 - 1))))
        aliases = draw(weighted((12, st.just(0)), (1, st.integers(2, 50)),
                                (1, st.sampled_from([200, 499, 999, 1001]))))
        if aliases:
            doc = with_aliases(doc, aliases)
            shape.append(f"{aliases} aliases")
        variables = None
        if draw(st.booleans()):
            doc, variables = to_variables(doc, schema)
            shape.append("arguments as variables")
        query = graphql.strip_ignored_characters(graphql.print_ast(doc))
        nesting = draw(weighted((12, st.just(0)), (1, st.integers(1, 20)),
                                (1, st.sampled_from([64, 500, 3000]))))
        if nesting:
            query = with_nesting(query, nesting)
            shape.append(f"nested {nesting} deep")
        return Operation(query=query, variables=variables, accept=draw(accepts),
                         device=draw(devices), shape=", ".join(shape))

    return build()
