#!/usr/bin/python3
"""Keeps proxy/ a stack (docs/architecture.md): no two modules of proxy/
depend on each other, directly or round a longer circle. A module is a file
name without its extension (call.c and call.h are one module, call); an
arrow is an #include "proxy/..." in any of its files. Also: health/,
balancer/, conf/ and core/ include nothing of proxy/.
Includes are what it sees: proxy/proxy.h declares the main-thread API of
several modules (worker, listen, admin, snapshot) for main.c, and the data
plane (fe, h1, filters, call ... conn) does not include it.
Prints each circle or wrong include and exits 1, or prints one line and
exits 0. make test runs it (scripts/run-tests.sh). Usage: check_layers.py [TOP]"""
import os
import re
import sys

top = sys.argv[1] if len(sys.argv) > 1 else "."
INCLUDE = re.compile(r'^\s*#\s*include\s+"(proxy/[^"]+)\.h"', re.M)


def sources(folder):
    for d, _, files in os.walk(os.path.join(top, folder)):
        for f in sorted(files):
            if re.search(r"\.(c|h|cc)$", f):
                yield os.path.join(d, f)


def module(path):
    return re.sub(r"\.(c|h|cc)$", "", os.path.relpath(path, top))


graph = {}
for path in sources("proxy"):
    m = module(path)
    with open(path, errors="replace") as f:
        for inc in INCLUDE.findall(f.read()):
            if inc != m:
                graph.setdefault(m, set()).add(inc)

# Tarjan's strongly connected components: each with two or more modules is a circle.
index, low, stack, on, circles = {}, {}, [], set(), []


def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on.add(v)
    for w in sorted(graph.get(v, ())):
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            circles.append(sorted(comp))


sys.setrecursionlimit(10000)
for v in sorted(graph):
    if v not in index:
        visit(v)

bad = 0
for comp in circles:
    print("circle of modules in proxy/: " + " <-> ".join(comp))
    for a in comp:
        for b in sorted(graph.get(a, ())):
            if b in comp:
                print("  %s includes %s.h" % (a, b))
    bad += 1
for folder in ("health", "balancer", "conf", "core"):
    for path in sources(folder):
        with open(path, errors="replace") as f:
            for inc in INCLUDE.findall(f.read()):
                print("%s includes %s.h: %s/ is below proxy/" % (os.path.relpath(path, top), inc,
                                                                 folder))
                bad += 1
if bad:
    sys.exit(1)
print("layers: %d modules of proxy/, no circle; nothing below includes proxy/" % len(
    set(graph) | {m for s in graph.values() for m in s}))
