"""Fixtures shared by the template tests."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from support import ROOT

SAM_PYTHON = ROOT / ".tools" / "sam" / "bin" / "python"

# Runs in the SAM CLI's venv (.tools/sam), which has the translator; managed policies are not looked up.
_TRANSLATE = """
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse
class NoManagedPolicies:
    def load(self, *args, **kwargs):
        return {}
document = yaml_parse(open(sys.argv[1]).read())
for resource in document["Resources"].values():
    properties = resource.get("Properties") or {}
    for key in ("CodeUri", "ContentUri"):
        if isinstance(properties.get(key), str):
            properties[key] = "s3://bucket/" + properties[key].strip("/")
pseudo = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}
json.dump(transform(document, pseudo, NoManagedPolicies()), open(sys.argv[2], "w"), default=str)
"""


@pytest.fixture(scope="session")
def translated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """template.yaml through the SAM translator (as `sam deploy` sends it to CloudFormation)."""
    if not SAM_PYTHON.exists():
        pytest.skip("the SAM CLI venv (.tools/sam, `make install`) is not installed")
    out = tmp_path_factory.mktemp("sam") / "translated.json"
    subprocess.run(
        [str(SAM_PYTHON), "-c", _TRANSLATE, str(ROOT / "template.yaml"), str(out)],
        check=True,
        env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
    )
    translated_template: dict[str, Any] = json.loads(out.read_text())
    translated_template["__path__"] = str(out)
    return translated_template
