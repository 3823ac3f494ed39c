"""Strategy files as a hostile user makes them: exports to odd targets, configs that are not
text, not JSON or absurdly nested. Every failure names the file and what is wrong."""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path

import pytest

from strategies.config import StrategyConfigError
from strategies.manager import ExportTargetError, StrategyManager, read_config_file

EMA = {"strategy": "ema_crossover", "name": "EMA 8/21", "params": {"fast": 8, "slow": 21}}


@pytest.fixture
def manager(tmp_path: Path) -> StrategyManager:
    stored = StrategyManager(tmp_path / "user_strategies")
    stored.create(EMA)
    return stored


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_export_writes_a_regular_file_with_the_umask_permissions(manager, tmp_path):
    previous = os.umask(0o022)
    try:
        written = manager.export("EMA 8/21", tmp_path / "ema.json")
    finally:
        os.umask(previous)
    assert written == tmp_path / "ema.json"
    assert json.loads(written.read_text())["params"] == {"fast": 8, "slow": 21}
    assert stat.S_IMODE(written.stat().st_mode) == 0o644  # not mkstemp's 0600
    assert _leftovers(tmp_path) == []


def test_export_over_an_existing_file_keeps_its_permissions(manager, tmp_path):
    target = tmp_path / "ema.json"
    target.write_text("old")
    target.chmod(0o640)
    manager.export("EMA 8/21", target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert json.loads(target.read_text())["name"] == "EMA 8/21"


def test_export_follows_a_symlink_and_keeps_the_link(manager, tmp_path):
    real = tmp_path / "shared" / "ema.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    written = manager.export("EMA 8/21", link)
    assert link.is_symlink()  # the link is still a link ...
    assert written == real  # ... and the file it points to holds the export
    assert json.loads(real.read_text())["name"] == "EMA 8/21"


def test_export_refuses_a_directory_and_names_it(manager, tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(ExportTargetError, match=rf"{folder}: it is a directory"):
        manager.export("EMA 8/21", folder)
    assert list(folder.iterdir()) == []


def test_export_refuses_a_special_file(manager, tmp_path):
    # a socket stands in for /dev/full (a device node needs mknod): not a regular file either
    path = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        with pytest.raises(ExportTargetError, match="not a regular file"):
            manager.export("EMA 8/21", path)
        assert stat.S_ISSOCK(path.stat().st_mode)  # untouched
    finally:
        server.close()
    assert _leftovers(tmp_path) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_export_refuses_a_device_node(manager, tmp_path):
    # as /dev/full: a character device (1, 7), made here so a regression cannot replace a real one
    device = tmp_path / "full"
    os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    with pytest.raises(ExportTargetError, match=rf"{device}: it is not a regular file"):
        manager.export("EMA 8/21", device)
    assert stat.S_ISCHR(device.stat().st_mode)
    assert _leftovers(tmp_path) == []


def test_export_into_a_missing_folder_is_refused_not_created(manager, tmp_path):
    target = tmp_path / "missing" / "ema.json"
    with pytest.raises(ExportTargetError, match=r"folder .*missing does not exist"):
        manager.export("EMA 8/21", target)
    assert not target.parent.exists()


def test_export_errors_name_the_target_not_the_temporary_file(manager, tmp_path):
    target = tmp_path / ("e" * 250 + ".json")  # a legal name; the temporary name beside it is not
    with pytest.raises(ExportTargetError) as caught:
        manager.export("EMA 8/21", target)
    assert str(target) in str(caught.value)
    assert ".tmp" not in str(caught.value)
    assert list(tmp_path.iterdir()) == [tmp_path / "user_strategies"]


def test_a_config_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"name": "caf\xe9"}')
    with pytest.raises(StrategyConfigError) as caught:
        read_config_file(path)
    assert str(path) in str(caught.value)
    assert "UTF-8" in str(caught.value)
    assert "0xe9" in str(caught.value)


def test_a_deeply_nested_config_is_refused_without_a_recursion_error(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(StrategyConfigError, match="nested too deeply"):
        read_config_file(path)


def test_an_oversized_config_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "huge.json"
    path.write_text('{"name": "' + "x" * (2 << 20) + '"}')
    with pytest.raises(StrategyConfigError, match="more than"):
        read_config_file(path)


def test_a_directory_given_as_a_config_is_named(tmp_path):
    with pytest.raises(StrategyConfigError, match="a directory"):
        read_config_file(tmp_path)
