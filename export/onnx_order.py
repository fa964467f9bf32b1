"""Topological order of an ONNX graph: which nodes read a value before it is made (out_of_order), and the graph
sorted so none does (sort_topologically). ONNX requires it (onnx.checker's full check refuses an unsorted graph;
onnxconverter-common's float16 conversion appends its Casts after the nodes that read them). Subgraphs (Loop, If,
Scan bodies) count: a node needs what its subgraphs read from the enclosing scope too.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

import onnx


def _subgraphs(node: onnx.NodeProto) -> Iterable[onnx.GraphProto]:
    """The graphs held by a node's attributes (a Loop's body, an If's branches)."""
    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            yield a.g
        elif a.type == onnx.AttributeProto.GRAPHS:
            yield from a.graphs


def _outer_reads(graph: onnx.GraphProto) -> set[str]:
    """Value names a subgraph reads that it does not define itself: the enclosing scope must have made them."""
    defined = {i.name for i in graph.input} | {i.name for i in graph.initializer}
    reads: set[str] = set()
    for n in graph.node:
        reads |= needs(n)
        defined |= set(n.output)
    return {r for r in reads | {o.name for o in graph.output} if r not in defined}


def needs(node: onnx.NodeProto) -> set[str]:
    """The value names `node` reads: its inputs and what its subgraphs read from the enclosing scope ("" unset)."""
    names = {i for i in node.input if i}
    for g in _subgraphs(node):
        names |= _outer_reads(g)
    return names


def out_of_order(graph: onnx.GraphProto, outer: Iterable[str] = ()) -> list[tuple[onnx.NodeProto, str]]:
    """Each node of `graph` (and of its subgraphs) that reads a value a later node makes, with that value's name;
    [] for a sorted graph. `outer`: names the enclosing scope provides (for a subgraph)."""
    made_later = {o for n in graph.node for o in n.output if o}
    ready = set(outer) | {i.name for i in graph.input} | {i.name for i in graph.initializer}
    found = []
    for n in graph.node:
        late = sorted(x for x in needs(n) if x not in ready and x in made_later)
        if late:
            found.append((n, late[0]))
        ready |= set(n.output)
        for g in _subgraphs(n):
            found += out_of_order(g, ready)
    return found


def sort_topologically(graph: onnx.GraphProto) -> None:
    """Reorder `graph`'s nodes, and its subgraphs', in place so each comes after the nodes it reads from, keeping
    the given order wherever it is free (Kahn's algorithm, lowest index first). Raises ValueError on a cycle."""
    nodes = list(graph.node)
    producer = {o: k for k, n in enumerate(nodes) for o in n.output if o}
    deps = [{producer[x] for x in needs(n) if x in producer} - {k} for k, n in enumerate(nodes)]
    users: list[list[int]] = [[] for _ in nodes]
    for k, ds in enumerate(deps):
        for d in ds:
            users[d].append(k)
    waiting = [len(ds) for ds in deps]
    ready = [k for k, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        k = heapq.heappop(ready)
        order.append(k)
        for u in users[k]:
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(nodes):
        raise ValueError(f"graph {graph.name!r} has a cycle: {len(nodes) - len(order)} nodes wait on each other")
    for n in nodes:
        for g in _subgraphs(n):
            sort_topologically(g)
    del graph.node[:]
    graph.node.extend(nodes[k] for k in order)
