"""What the documentation shows of the executable stays what the executable does."""

from __future__ import annotations

import os
import re

import pytest

import fwit
from conftest import run_fwgate

pytestmark = pytest.mark.fwgate_only


def read(*parts: str) -> str:
    with open(os.path.join(fwit.REPO, *parts), encoding="utf-8") as f:
        return f.read()


def settings_only(toml: str) -> list[str]:
    return [line for line in toml.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_configuration_md_shows_the_embedded_default():
    """docs/configuration.md's first TOML block is `fwgate config default` less its comments."""
    cp = run_fwgate(["config", "default"])
    assert cp.returncode == 0, cp.stderr
    block = re.search(r"```toml\n(.*?)```", read("docs", "configuration.md"), re.S)
    assert block, "no toml block in docs/configuration.md"
    assert settings_only(block.group(1)) == settings_only(cp.stdout.decode()), block.group(1)


def test_readme_lists_every_subcommand():
    """Every subcommand in `fwgate --help` appears in the README's usage block, and no other."""
    cp = run_fwgate(["--help"])
    assert cp.returncode == 0, cp.stderr
    help_text = cp.stdout.decode()
    listed = re.findall(r"^  ([a-z][a-z-]*) {2,}", help_text.split("Subcommands:", 1)[1], re.M)
    assert len(listed) >= 9, help_text
    usage = re.search(r"## Using it\n\n```\n(.*?)```", read("README.md"), re.S)
    assert usage, "no usage block under '## Using it' in README.md"
    documented = set(re.findall(r"^fwgate ([a-z][a-z-]*)", usage.group(1), re.M))
    assert documented == set(listed), (sorted(documented), sorted(listed))


def test_the_man_page_names_every_key_of_configuration_md():
    """fwgate.toml(5) is written by hand from docs/configuration.md: every key in that document's
    tables appears in it, so a new key cannot be documented in one and forgotten in the other."""
    doc = read("docs", "configuration.md")
    keys = set(re.findall(r"^\| `([a-z_][a-z0-9_]*)` \|", doc, re.M))
    assert len(keys) >= 40, sorted(keys)
    page = read("packaging", "man", "fwgate.toml.5").replace("\\-", "-").replace("\\fB", "").replace("\\fR", "")
    missing = sorted(k for k in keys if not re.search(r"(?<![a-z0-9_])" + re.escape(k) + r"(?![a-z0-9_])", page))
    assert not missing, f"in docs/configuration.md but not in packaging/man/fwgate.toml.5: {missing}"
