"""Print the requirements of one optional-dependency group of pyproject.toml,
one per line (the test and bench scripts install them without installing
corecache itself)."""
import re
import sys
from pathlib import Path

text = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
try:
    import tomllib
    extras = tomllib.loads(text)["project"]["optional-dependencies"]
except ImportError:  # Python < 3.11: the table is simple enough to read by hand
    section = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    extras = {m.group(1): re.findall(r'"([^"]+)"', m.group(2))
              for m in re.finditer(r"^(\w+)\s*=\s*\[(.*?)\]", section, re.S | re.M)}
print("\n".join(extras[sys.argv[1]]))
