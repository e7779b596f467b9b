"""Bad OpenStack configuration reaches the operator as one line and exit 2 (no server needed: tier 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import RunCli

PASSWORD = "Hunter2-not-for-your-eyes"

MALFORMED = {
    "bad-yaml": f"clouds:\n  prod:\n    auth:\n      password: {PASSWORD}\n   region: [\n",
    "not-a-mapping": f"- prod\n- {PASSWORD}\n",
    "clouds-not-a-mapping": f"clouds:\n  - {PASSWORD}\n",
}


def _check_one_line(result, *, must_name: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lbswap: error:")
    assert must_name in lines[0]
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stderr + result.stdout


@pytest.mark.parametrize("case", sorted(MALFORMED))
@pytest.mark.parametrize("command", [["inventory"], ["plan", "--all"], ["run", "--all", "--yes"]])
def test_malformed_clouds_yaml(run_cli: RunCli, tmp_path: Path, case: str, command: list[str]) -> None:
    path = tmp_path / "clouds.yaml"
    path.write_text(MALFORMED[case])
    result = run_cli(["--os-cloud", "prod", *command], env={"OS_CLIENT_CONFIG_FILE": str(path)})
    _check_one_line(result, must_name=str(path))


@pytest.mark.parametrize("how", ["flag", "env", "backend"])
def test_unknown_cloud_name(run_cli: RunCli, tmp_path: Path, how: str) -> None:
    path = tmp_path / "clouds.yaml"
    path.write_text(
        "clouds:\n  prod:\n    auth_type: password\n    auth:\n      auth_url: http://127.0.0.1:1/v3\n"
        f"      username: admin\n      password: {PASSWORD}\n      project_name: admin\n"
    )
    env = {"OS_CLIENT_CONFIG_FILE": str(path)}
    args = {"flag": ["--os-cloud", "staging"], "env": [], "backend": ["--backend", "openstack:staging"]}[how]
    if how == "env":
        env["OS_CLOUD"] = "staging"
    result = run_cli([*args, "inventory"], env=env)
    _check_one_line(result, must_name="staging")


@pytest.mark.parametrize("auth", ["none", "password"])
def test_unreachable_cloud_is_one_line_without_secrets(run_cli: RunCli, tmp_path: Path, auth: str) -> None:
    """Nothing listens on 127.0.0.1:1: endpoint discovery (or the token request) fails at the boundary."""
    path = tmp_path / "clouds.yaml"
    if auth == "none":
        entry = "    auth_type: none\n    load_balancer_endpoint_override: http://127.0.0.1:1\n"
    else:
        entry = (
            "    auth_type: password\n    auth:\n      auth_url: http://127.0.0.1:1/v3\n"
            f"      username: admin\n      password: {PASSWORD}\n      project_name: admin\n"
            "      user_domain_name: Default\n      project_domain_name: Default\n"
        )
    path.write_text("clouds:\n  prod:\n" + entry)
    result = run_cli(["--os-cloud", "prod", "-v", "inventory"], env={"OS_CLIENT_CONFIG_FILE": str(path)})
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("lbswap: error:")
    assert PASSWORD not in result.stderr + result.stdout
