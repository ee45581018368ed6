#!/usr/bin/env python3
"""Prints the commands of the README's quick start, one per line: the code block under the
"## Quick start" heading, without comments and blank lines. CI runs exactly these."""
import re
import sys

text = open(sys.argv[1], encoding="utf-8").read()
section = re.search(r"^## Quick start\n(.*?)(?=^## )", text, re.S | re.M)
if not section:
    sys.exit("README has no '## Quick start' section")
block = re.search(r"```(?:sh|bash)\n(.*?)```", section.group(1), re.S)
if not block:
    sys.exit("the quick start has no sh code block")
for line in block.group(1).splitlines():
    line = line.strip()
    if line and not line.startswith("#"):
        print(line)
