"""``plantops validate-manifests``: exit codes 0/1/2, multi-document YAML, JSON output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml as pyyaml
from schema_samples import cnpg_cluster, config_map, deployment, middleware, mutated, service
from typer.testing import CliRunner

from plantops.cli.main import app

runner = CliRunner()


def write_yaml(path: Path, *objs: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(pyyaml.safe_dump_all(objs, sort_keys=False))
    return path


def test_valid_tree_exits_0(tmp_path: Path) -> None:
    write_yaml(tmp_path / "a" / "web.yaml", deployment(), service())
    write_yaml(tmp_path / "a" / "b" / "db.yml", cnpg_cluster())
    (tmp_path / "cm.json").write_text(json.dumps(config_map()))
    (tmp_path / "notes.txt").write_text("not a manifest")
    write_yaml(tmp_path / ".git" / "x.yaml", {"junk": True})  # hidden: skipped
    result = runner.invoke(app, ["validate-manifests", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "4 objects in 3 files against Kubernetes" in result.output
    assert "all valid" in result.output


def test_multi_document_file_with_findings_exits_1(tmp_path: Path) -> None:
    bad_mw = middleware()
    bad_mw["spec"] = {"IPWhiteList": {"sourceRange": ["10.0.0.0/8"]}}
    path = write_yaml(
        tmp_path / "all.yaml",
        config_map(),
        mutated(deployment(), "spec.replicass", 2),
        service(),
        bad_mw,
    )
    result = runner.invoke(app, ["validate-manifests", str(path), "--kubernetes-version", "1.30"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    text = path.read_text().splitlines()
    starts = [i + 2 for i, line in enumerate(text) if line == "---"]  # line after each ---
    assert any(
        line.endswith(
            f':{starts[0]} (document 1): Deployment/lyon-odoo-web spec.replicass: unknown field "replicass" '
            '(did you mean "replicas"?)'
        )
        for line in lines
    ), result.output
    assert any(
        f":{starts[2]} (document 3): Middleware/lyon-admin-allow spec.IPWhiteList" in line
        for line in lines
    )
    assert "4 objects in 1 file against Kubernetes 1.30: 2 invalid (2 findings)" in result.output


def test_empty_documents_keep_their_index(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(
        "---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {a: 1}\n"
    )
    result = runner.invoke(app, ["validate-manifests", str(path)])
    assert result.exit_code == 1
    assert (
        "x.yaml:3 (document 1): ConfigMap/a data.a: expected string, got integer 1" in result.output
    )


def test_json_format(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "x.yaml", mutated(service(), "spec.typo", 1))
    result = runner.invoke(app, ["validate-manifests", str(path), "--format", "json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["objects"] == 1
    assert report["invalid_objects"] == 1
    (finding,) = report["findings"]
    assert finding["path"] == "spec.typo"
    assert finding["document_index"] == 0
    assert finding["kind"] == "Service"


def test_missing_schema_exits_1_unless_ignored(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "w.yaml", {"apiVersion": "example.com/v1", "kind": "Widget"})
    result = runner.invoke(app, ["validate-manifests", str(path)])
    assert result.exit_code == 1
    assert "no schema for Widget (example.com/v1)" in result.output
    assert "pass --schemas DIR" in result.output
    ignored = runner.invoke(app, ["validate-manifests", str(path), "--ignore-missing-schemas"])
    assert ignored.exit_code == 0, ignored.output


def test_schemas_directory_option(tmp_path: Path, shared_crds: Path) -> None:
    path = write_yaml(tmp_path / "db.yaml", mutated(cnpg_cluster(), "spec.instancez", 2))
    result = runner.invoke(app, ["validate-manifests", str(path), "--schemas", str(shared_crds)])
    assert result.exit_code == 1
    assert "spec.instancez" in result.output


def test_unparsable_yaml_exits_2_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [x\n  other: 1\n")
    result = runner.invoke(app, ["validate-manifests", str(path)])
    assert result.exit_code == 2
    assert "broken.yaml:" in result.output
    assert "invalid YAML" in result.output
    assert "Traceback" not in result.output


def test_unparsable_json_exits_2_with_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "apiVersion": "v1",\n  "kind": \n}\n')
    result = runner.invoke(app, ["validate-manifests", str(path)])
    assert result.exit_code == 2
    assert "broken.json:4:1: invalid JSON" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent/manifests"], "no such file or directory"),
        (["{tmp}", "--kubernetes-version", "1.2"], "no Kubernetes schemas for 1.2"),
        (["{tmp}", "--kubernetes-version", "latest"], "is not like 1.30"),
        (["{tmp}", "--schemas", "/nonexistent/schemas"], "not a directory nor"),
        (["{tmp}", "--schemas", "https://x.example/{group}.json"], "lacks {kind}, {version}"),
        (["{tmp}", "--format", "xml"], ""),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    write_yaml(tmp_path / "ok.yaml", config_map())
    argv = ["validate-manifests", *(a.replace("{tmp}", str(tmp_path)) for a in args)]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_newer_version_than_shipped_falls_back_with_a_note(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "ok.yaml", config_map())
    result = runner.invoke(app, ["validate-manifests", str(path), "--kubernetes-version", "1.99"])
    assert result.exit_code == 0
    assert "note: no schemas for Kubernetes 1.99; using 1." in result.output


def test_rendered_tree_validates_cleanly_skipping_sidecars(tmp_path: Path) -> None:
    """kustomization.yaml and deployment.json beside the objects are not cluster objects."""
    from tests.conftest import EXAMPLE, TODAY

    from plantops import services

    out = tmp_path / "out"
    services.plan_fleet(EXAMPLE, out, today=TODAY, plants=["porto-plastics"])
    r = CliRunner().invoke(
        app, ["validate-manifests", str(out / "clusters"), "--kubernetes-version", "1.30"]
    )
    assert r.exit_code == 0, r.output
    assert "all valid" in r.output and "non-object document(s) skipped" in r.output
